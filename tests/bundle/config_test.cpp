#include "bundle/config.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "bundle/tensor_table.h"
#include "bundle_test_util.h"

namespace mxgemma {
namespace {

using testing::contains;
using testing::ScratchDir;
using testing::write_json;

// The E2B-it config.json: text values of Hugging Face's converter (gemma-4-e2b variant), the
// on-device vision config and the audio defaults.
nlohmann::json e2b_config() {
  nlohmann::json layer_types = nlohmann::json::array();
  for (int layer = 0; layer < 35; ++layer) {
    layer_types.push_back(layer % 5 == 4 ? "full_attention" : "sliding_attention");
  }
  return {
      {"model_type", "gemma4"},
      {"architectures", {"Gemma4ForConditionalGeneration"}},
      {"eos_token_id", {1, 106}},
      {"image_token_id", 258880},
      {"audio_token_id", 258881},
      {"video_token_id", 258884},
      {"boi_token_id", 255999},
      {"eoi_token_id", 258882},
      {"boa_token_id", 256000},
      {"eoa_token_index", 258883},
      {"vision_soft_tokens_per_image", 280},
      {"quantization",
       {{"bits", 4},
        {"group_size", 32},
        {"mode", "mxfp4"},
        {"quantization_backend", "mx.quantize"},
        {"norm_convention", "gemma4_scale_shift_zero"},
        {"tied_embedding", "fp16_passthrough"},
        {"multimodal", "fp16_passthrough_embedders_early_fusion"},
        {"mtp", "none"}}},
      {"text_config",
       {{"model_type", "gemma4_text"},
        {"hidden_size", 1536},
        {"intermediate_size", 6144},
        {"num_hidden_layers", 35},
        {"layer_types", layer_types},
        {"num_attention_heads", 8},
        {"num_key_value_heads", 1},
        {"num_global_key_value_heads", nullptr},
        {"attention_k_eq_v", false},
        {"head_dim", 256},
        {"global_head_dim", 512},
        {"sliding_window", 512},
        {"max_position_embeddings", 131072},
        {"rms_norm_eps", 1e-6},
        {"hidden_activation", "gelu_pytorch_tanh"},
        {"vocab_size", 262144},
        {"vocab_size_per_layer_input", 262144},
        {"hidden_size_per_layer_input", 256},
        {"num_kv_shared_layers", 20},
        {"use_double_wide_mlp", true},
        {"final_logit_softcapping", 30.0},
        {"enable_moe_block", false},
        {"tie_word_embeddings", true},
        {"bos_token_id", 2},
        {"eos_token_id", 1},
        {"pad_token_id", 0},
        {"rope_parameters",
         {{"full_attention",
           {{"rope_type", "proportional"},
            {"rope_theta", 1000000.0},
            {"partial_rotary_factor", 0.25}}},
          {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}}}}},
      {"vision_config",
       {{"model_type", "gemma4_vision"},
        {"hidden_size", 768},
        {"intermediate_size", 3072},
        {"num_hidden_layers", 16},
        {"num_attention_heads", 12},
        {"num_key_value_heads", 12},
        {"head_dim", 64},
        {"global_head_dim", 64},
        {"patch_size", 16},
        {"pooling_kernel_size", 3},
        {"default_output_length", 280},
        {"position_embedding_size", 10240},
        {"use_clipped_linears", true},
        {"standardize", false},
        {"rms_norm_eps", 1e-6},
        {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 100.0}}}}},
      {"audio_config",
       {{"hidden_size", 1024},
        {"num_hidden_layers", 12},
        {"num_attention_heads", 8},
        {"hidden_act", "silu"},
        {"subsampling_conv_channels", {128, 32}},
        {"conv_kernel_size", 5},
        {"residual_weight", 0.5},
        {"attention_chunk_size", 12},
        {"attention_context_left", 13},
        {"attention_context_right", 0},
        {"attention_logit_cap", 50.0},
        {"attention_invalid_logits_value", -1e9},
        {"use_clipped_linears", true},
        {"rms_norm_eps", 1e-6},
        {"gradient_clipping", 1e10},
        {"output_proj_dims", 1536}}},
  };
}

ModelConfig parse(const ScratchDir& scratch, const nlohmann::json& config) {
  write_json(scratch.path() / "config.json", config);
  return parse_model_config(scratch.path() / "config.json");
}

// Expects parse_model_config to throw one line naming config.json and containing `text`.
void expect_config_error(const nlohmann::json& config, const std::string& text) {
  ScratchDir scratch;
  try {
    parse(scratch, config);
    FAIL() << "no exception for " << text;
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    EXPECT_TRUE(contains(message, "config.json: " + text));
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }
}

TEST(ModelConfig, E2BValues) {
  ScratchDir scratch;
  const ModelConfig config = parse(scratch, e2b_config());
  const TextConfig& text = config.text;
  EXPECT_EQ(config.model_type, "gemma4");
  EXPECT_EQ(text.model_type, "gemma4_text");
  EXPECT_EQ(text.hidden_size, 1536);
  EXPECT_EQ(text.intermediate_size, 6144);
  EXPECT_EQ(text.num_hidden_layers, 35);
  EXPECT_EQ(text.num_attention_heads, 8);
  EXPECT_EQ(text.num_key_value_heads, 1);
  EXPECT_EQ(text.num_global_key_value_heads, 0);
  EXPECT_EQ(text.head_dim, 256);
  EXPECT_EQ(text.global_head_dim, 512);
  EXPECT_EQ(text.sliding_window, 512);
  EXPECT_EQ(text.max_position_embeddings, 131072);
  EXPECT_EQ(text.vocab_size, 262144);
  EXPECT_EQ(text.vocab_size_per_layer_input, 262144);
  EXPECT_EQ(text.hidden_size_per_layer_input, 256);
  EXPECT_EQ(text.num_kv_shared_layers, 20);
  EXPECT_TRUE(text.use_double_wide_mlp);
  EXPECT_FALSE(text.attention_k_eq_v);
  EXPECT_DOUBLE_EQ(text.final_logit_softcapping, 30.0);
  EXPECT_DOUBLE_EQ(text.rms_norm_eps, 1e-6);
  EXPECT_EQ(text.rope_full.rope_type, "proportional");
  EXPECT_DOUBLE_EQ(text.rope_full.rope_theta, 1e6);
  EXPECT_DOUBLE_EQ(text.rope_full.partial_rotary_factor, 0.25);
  EXPECT_EQ(text.rope_sliding.rope_type, "default");
  EXPECT_DOUBLE_EQ(text.rope_sliding.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(text.rope_sliding.partial_rotary_factor, 1.0);

  std::vector<int> full_layers;
  for (int layer = 0; layer < 35; ++layer) {
    if (text.is_full_attention(layer)) full_layers.push_back(layer);
  }
  EXPECT_EQ(full_layers, (std::vector<int>{4, 9, 14, 19, 24, 29, 34}));

  EXPECT_EQ(config.eos_token_ids, (std::vector<int32_t>{1, 106}));
  EXPECT_EQ(config.image_token_id, 258880);
  EXPECT_EQ(config.audio_token_id, 258881);
  EXPECT_EQ(config.video_token_id, 258884);
  EXPECT_EQ(config.boi_token_id, 255999);
  EXPECT_EQ(config.eoi_token_id, 258882);
  EXPECT_EQ(config.boa_token_id, 256000);
  EXPECT_EQ(config.eoa_token_id, 258883);

  ASSERT_TRUE(config.vision.has_value());
  EXPECT_EQ(config.vision->hidden_size, 768);
  EXPECT_EQ(config.vision->num_hidden_layers, 16);
  EXPECT_EQ(config.vision->position_embedding_size, 10240);
  EXPECT_TRUE(config.vision->use_clipped_linears);
  EXPECT_DOUBLE_EQ(config.vision->rope_theta, 100.0);
  ASSERT_TRUE(config.audio.has_value());
  EXPECT_EQ(config.audio->hidden_size, 1024);
  EXPECT_EQ(config.audio->subsampling_conv_channels, (std::vector<int>{128, 32}));
  EXPECT_EQ(config.audio->output_proj_dims, 1536);
  EXPECT_DOUBLE_EQ(config.audio->attention_logit_cap, 50.0);

  EXPECT_TRUE(config.quantization.present);
  EXPECT_EQ(config.quantization.key, "quantization");
  EXPECT_EQ(config.quantization.base.mode, "mxfp4");
  EXPECT_EQ(config.quantization.base.group_size, 32);
  EXPECT_EQ(config.quantization.base.bits, 4);
  EXPECT_TRUE(config.quantization.overrides.empty());
}

TEST(ModelConfig, E2BLayerHelpers) {
  ScratchDir scratch;
  const TextConfig text = parse(scratch, e2b_config()).text;
  EXPECT_EQ(text.first_kv_shared_layer(), 15);
  EXPECT_FALSE(text.is_kv_shared(14));
  EXPECT_TRUE(text.is_kv_shared(15));
  EXPECT_EQ(text.kv_source_layer(3), 3);
  EXPECT_EQ(text.kv_source_layer(15), 13);
  EXPECT_EQ(text.kv_source_layer(19), 14);
  EXPECT_EQ(text.kv_source_layer(34), 14);
  EXPECT_EQ(text.layer_head_dim(0), 256);
  EXPECT_EQ(text.layer_head_dim(4), 512);
  EXPECT_EQ(text.layer_kv_heads(4), 1);
  EXPECT_EQ(text.layer_intermediate_size(14), 6144);
  EXPECT_EQ(text.layer_intermediate_size(15), 12288);
  EXPECT_EQ(text.layer_intermediate_size(34), 12288);
}

// 15 own-KV layers x 9 linears + 20 shared layers x 7 + per_layer_model_projection +
// embed_tokens_per_layer = 277, the count of the MXFP4 bundle; embed_tokens stays 16-bit.
TEST(TensorTable, E2BTextLinears) {
  ScratchDir scratch;
  const ModelConfig config = parse(scratch, e2b_config());
  const auto table = model_tensor_table(config, BundleLayout::hf_names);
  int required_text_linears = 0;
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& spec : table) {
    shapes[spec.name] = spec.shape;
    if (spec.kind == TensorKind::linear && spec.required &&
        spec.name.rfind("language_model.", 0) == 0) {
      ++required_text_linears;
    }
  }
  EXPECT_EQ(required_text_linears, 277 + 1);
  const std::string p = "language_model.model.";
  EXPECT_EQ(shapes[p + "embed_tokens_per_layer"], (std::vector<int64_t>{262144, 8960}));
  EXPECT_EQ(shapes[p + "per_layer_model_projection"], (std::vector<int64_t>{8960, 1536}));
  EXPECT_EQ(shapes[p + "layers.0.self_attn.q_proj"], (std::vector<int64_t>{2048, 1536}));
  EXPECT_EQ(shapes[p + "layers.4.self_attn.q_proj"], (std::vector<int64_t>{4096, 1536}));
  EXPECT_EQ(shapes[p + "layers.4.self_attn.k_proj"], (std::vector<int64_t>{512, 1536}));
  EXPECT_EQ(shapes[p + "layers.4.self_attn.o_proj"], (std::vector<int64_t>{1536, 4096}));
  EXPECT_EQ(shapes[p + "layers.34.mlp.gate_proj"], (std::vector<int64_t>{12288, 1536}));
  EXPECT_EQ(shapes[p + "layers.34.mlp.down_proj"], (std::vector<int64_t>{1536, 12288}));
  EXPECT_EQ(shapes[p + "layers.3.per_layer_input_gate"], (std::vector<int64_t>{256, 1536}));
  EXPECT_EQ(shapes["vision_tower.patch_embedder.position_embedding_table"],
            (std::vector<int64_t>{2, 10240, 768}));
  EXPECT_EQ(shapes["audio_tower.subsample_conv_projection.layer1.conv.weight"],
            (std::vector<int64_t>{32, 128, 3, 3}));
  EXPECT_EQ(shapes["audio_tower.subsample_conv_projection.input_proj_linear"],
            (std::vector<int64_t>{1024, 1024}));
  EXPECT_EQ(shapes["audio_tower.layers.0.lconv1d.depthwise_conv1d.weight"],
            (std::vector<int64_t>{1024, 5, 1}));
  EXPECT_EQ(shapes["embed_audio.embedding_projection"], (std::vector<int64_t>{1536, 1536}));

  // mlx-vlm stores Conv2d weights channels-last.
  const auto mlx_table = model_tensor_table(config, BundleLayout::mlx_vlm);
  const auto conv = std::find_if(mlx_table.begin(), mlx_table.end(), [](const TensorSpec& spec) {
    return spec.name == "audio_tower.subsample_conv_projection.layer1.conv.weight";
  });
  ASSERT_NE(conv, mlx_table.end());
  EXPECT_EQ(conv->shape, (std::vector<int64_t>{32, 3, 3, 128}));
}

TEST(ModelConfig, DerivesLayerTypesFromPattern) {
  auto config = e2b_config();
  config["text_config"].erase("layer_types");
  config["text_config"]["sliding_window_pattern"] = 5;
  ScratchDir scratch;
  const TextConfig text = parse(scratch, config).text;
  ASSERT_EQ(text.layer_types.size(), 35u);
  EXPECT_TRUE(text.is_full_attention(4));
  EXPECT_FALSE(text.is_full_attention(5));
  EXPECT_TRUE(text.is_full_attention(34));
}

TEST(ModelConfig, FlatRopeKeys) {
  auto config = e2b_config();
  config["text_config"].erase("rope_parameters");
  config["text_config"]["rope_theta"] = 500000.0;
  config["text_config"]["rope_local_base_freq"] = 20000.0;
  ScratchDir scratch;
  const TextConfig text = parse(scratch, config).text;
  EXPECT_DOUBLE_EQ(text.rope_full.rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(text.rope_sliding.rope_theta, 20000.0);
}

TEST(ModelConfig, NullTowersMeanNone) {
  auto config = e2b_config();
  config["vision_config"] = nullptr;
  config.erase("audio_config");
  ScratchDir scratch;
  const ModelConfig parsed = parse(scratch, config);
  EXPECT_FALSE(parsed.vision.has_value());
  EXPECT_FALSE(parsed.audio.has_value());
}

TEST(ModelConfig, QuantizationConfigKeyAndOverrides) {
  auto config = e2b_config();
  config.erase("quantization");
  config["quantization_config"] = {
      {"group_size", 64},
      {"bits", 4},
      {"mode", "affine"},
      {"language_model.model.layers.0.mlp.down_proj", {{"group_size", 32}, {"bits", 8}}},
      {"language_model.model.layers.1.mlp.down_proj", false}};
  ScratchDir scratch;
  const QuantizationConfig quantization = parse(scratch, config).quantization;
  EXPECT_EQ(quantization.key, "quantization_config");
  EXPECT_EQ(quantization.base.mode, "affine");
  EXPECT_EQ(quantization.base.group_size, 64);
  const auto down0 = quantization.spec_for("language_model.model.layers.0.mlp.down_proj");
  ASSERT_TRUE(down0.has_value());
  EXPECT_EQ(down0->bits, 8);
  EXPECT_EQ(down0->group_size, 32);
  EXPECT_EQ(down0->mode, "affine");
  EXPECT_FALSE(quantization.spec_for("language_model.model.layers.1.mlp.down_proj").has_value());
  const auto up = quantization.spec_for("language_model.model.layers.1.mlp.up_proj");
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->group_size, 64);
}

TEST(ModelConfig, TextOnlyTopLevel) {
  auto config = e2b_config()["text_config"];
  config["eos_token_id"] = {1, 106};
  ScratchDir scratch;
  const ModelConfig parsed = parse(scratch, config);
  EXPECT_EQ(parsed.model_type, "gemma4_text");
  EXPECT_EQ(parsed.text.hidden_size, 1536);
  EXPECT_FALSE(parsed.vision.has_value());
  EXPECT_EQ(parsed.eos_token_ids, (std::vector<int32_t>{1, 106}));
}

TEST(ModelConfigBadInput, MissingField) {
  auto config = e2b_config();
  config["text_config"].erase("hidden_size");
  expect_config_error(config, "text_config.hidden_size: missing");
}

TEST(ModelConfigBadInput, WrongTypes) {
  auto config = e2b_config();
  config["text_config"]["hidden_size"] = "1536";
  expect_config_error(config, "text_config.hidden_size: expected an integer, found string");

  config = e2b_config();
  config["text_config"]["use_double_wide_mlp"] = 1;
  expect_config_error(config, "text_config.use_double_wide_mlp: expected a boolean, found number");

  config = e2b_config();
  config["text_config"]["rms_norm_eps"] = "small";
  expect_config_error(config, "text_config.rms_norm_eps: expected a number, found string");

  config = e2b_config();
  config["text_config"] = 5;
  expect_config_error(config, "text_config: expected an object, found number");

  config = e2b_config();
  config["audio_config"]["subsampling_conv_channels"] = {128, "32"};
  expect_config_error(config, "audio_config.subsampling_conv_channels[1]: expected an integer");

  config = e2b_config();
  config["vision_config"].erase("patch_size");
  expect_config_error(config, "vision_config.patch_size: missing");
}

TEST(ModelConfigBadInput, InconsistentValues) {
  auto config = e2b_config();
  config["text_config"]["num_hidden_layers"] = 0;
  expect_config_error(config, "text_config.num_hidden_layers: expected a positive integer");

  config = e2b_config();
  config["text_config"]["layer_types"].erase(0);
  expect_config_error(config, "text_config.layer_types: has 34 entries");

  config = e2b_config();
  config["text_config"]["layer_types"][3] = "global";
  expect_config_error(config, "text_config.layer_types[3]: expected \"sliding_attention\"");

  config = e2b_config();
  config["text_config"]["num_kv_shared_layers"] = 35;
  expect_config_error(config, "text_config.num_kv_shared_layers: is 35");

  // Layer 4 is the only full layer before the shared ones start at 4.
  config = e2b_config();
  config["text_config"]["num_kv_shared_layers"] = 31;
  expect_config_error(config, "text_config.num_kv_shared_layers: KV-shared layer 4");

  config = e2b_config();
  config["text_config"]["enable_moe_block"] = true;
  expect_config_error(config, "text_config.enable_moe_block: mixture-of-experts");
}

TEST(ModelConfigBadInput, UnknownModelType) {
  auto config = e2b_config();
  config["model_type"] = "llama";
  expect_config_error(config, "model_type: unsupported model type \"llama\" (supported: gemma4");
  config.erase("model_type");
  expect_config_error(config, "model_type: missing");
}

TEST(ModelConfigBadInput, UnsupportedQuantization) {
  for (const char* mode : {"nvfp4", "mxfp8"}) {
    auto config = e2b_config();
    config["quantization"]["mode"] = mode;
    expect_config_error(config,
                        std::string("quantization.mode: unsupported quantization mode \"") + mode);
  }
  auto config = e2b_config();
  config["quantization"] = {{"mode", "affine"}, {"bits", 3}, {"group_size", 64}};
  expect_config_error(config,
                      "quantization.bits: unsupported quantization mode affine with 3 bits");

  config = e2b_config();
  config["quantization"]["group_size"] = 64;
  expect_config_error(config, "quantization.bits: mxfp4 needs bits 4 and group_size 32");

  config = e2b_config();
  config["quantization"]["language_model.model.layers.0.mlp.up_proj"] = {{"mode", "nvfp4"}};
  expect_config_error(
      config, "quantization.language_model.model.layers.0.mlp.up_proj.mode: unsupported");

  config = e2b_config();
  config.erase("quantization");
  config["quantization_config"] = {{"quant_method", "bitsandbytes"}, {"load_in_4bit", true}};
  expect_config_error(config, "quantization_config.quant_method: unsupported quantization method");
}

TEST(ModelConfigBadInput, InvalidJson) {
  ScratchDir scratch;
  testing::write_file(scratch.path() / "config.json", "{\"model_type\": ");
  try {
    parse_model_config(scratch.path() / "config.json");
    FAIL();
  } catch (const std::runtime_error& error) {
    EXPECT_TRUE(contains(error.what(), "config.json: invalid JSON"));
  }
}

TEST(GenerationConfig, MergesEosAndReadsDefaults) {
  ScratchDir scratch;
  const ModelConfig model = parse(scratch, e2b_config());
  write_json(scratch.path() / "generation_config.json",
             {{"bos_token_id", 2},
              {"pad_token_id", 0},
              {"eos_token_id", {1, 106, 50}},
              {"do_sample", true},
              {"temperature", 1.0},
              {"top_k", 64},
              {"top_p", 0.95}});
  const GenerationConfig generation =
      parse_generation_config(scratch.path() / "generation_config.json", model);
  EXPECT_EQ(generation.eos_token_ids, (std::vector<int32_t>{1, 106, 50}));
  EXPECT_TRUE(generation.do_sample);
  EXPECT_EQ(generation.bos_token_id, 2);
  EXPECT_DOUBLE_EQ(generation.temperature.value(), 1.0);
  EXPECT_EQ(generation.top_k.value(), 64);
  EXPECT_DOUBLE_EQ(generation.top_p.value(), 0.95);
  EXPECT_FALSE(generation.min_p.has_value());
  EXPECT_FALSE(generation.repetition_penalty.has_value());

  // A single int eos in generation_config.json still gains config.json's ids.
  write_json(scratch.path() / "generation_config.json", {{"eos_token_id", 1}});
  EXPECT_EQ(parse_generation_config(scratch.path() / "generation_config.json", model)
                  .eos_token_ids, (std::vector<int32_t>{1, 106}));
}

TEST(GenerationConfigBadInput, WrongTypes) {
  ScratchDir scratch;
  const ModelConfig model = parse(scratch, e2b_config());
  const auto path = scratch.path() / "generation_config.json";
  write_json(path, {{"top_k", "64"}});
  EXPECT_THROW(
      {
        try {
          parse_generation_config(path, model);
        } catch (const std::runtime_error& error) {
          EXPECT_TRUE(contains(error.what(),
                               "generation_config.json: top_k: expected an integer, found string"));
          throw;
        }
      },
      std::runtime_error);
  write_json(path, {{"eos_token_id", {1, "x"}}});
  EXPECT_THROW(parse_generation_config(path, model), std::runtime_error);
  write_json(path, {{"top_p", 1.5}});
  EXPECT_THROW(parse_generation_config(path, model), std::runtime_error);
}

}  // namespace
}  // namespace mxgemma
