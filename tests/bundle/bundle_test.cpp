#include "bundle/bundle.h"

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "bundle_test_util.h"
#include "util/half.h"

namespace mxgemma {
namespace {

using testing::contains;
using testing::ScratchDir;
using testing::TinyBundleOptions;
using testing::write_json;
using testing::write_tiny_bundle;

namespace fs = std::filesystem;

constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
constexpr const char* kShard2 = "model-00002-of-00002.safetensors";

// Opens `dir`, expecting one std::runtime_error line that contains every part.
void expect_open_error(const fs::path& dir, std::initializer_list<std::string> parts) {
  try {
    Bundle::open(dir);
    FAIL() << "no exception";
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const auto& part : parts) EXPECT_TRUE(contains(message, part));
  }
}

nlohmann::json read_json(const fs::path& path) {
  return nlohmann::json::parse(testing::read_file(path));
}

// The shard that the index names for `tensor`.
std::string shard_of(const fs::path& dir, const std::string& tensor) {
  return read_json(dir / "model.safetensors.index.json")["weight_map"][tensor];
}

// Rewrites a shard without `tensor` (the index still names it).
void drop_tensor(const fs::path& dir, const std::string& tensor) {
  const fs::path shard = dir / shard_of(dir, tensor);
  const std::string bytes = testing::read_file(shard);
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | uint8_t(bytes[i]);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_length));
  header.erase(tensor);
  const std::string text = header.dump();
  testing::write_file(shard, testing::safetensors_bytes(text.size(), text,
                                                        bytes.substr(8 + header_length)));
}

// Rewrites one tensor's header entry through `edit`, keeping its data offsets.
template <typename Edit>
void edit_entry(const fs::path& dir, const std::string& tensor, Edit edit) {
  const fs::path shard = dir / shard_of(dir, tensor);
  const std::string bytes = testing::read_file(shard);
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | uint8_t(bytes[i]);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_length));
  edit(header[tensor]);
  const std::string text = header.dump();
  testing::write_file(shard, testing::safetensors_bytes(text.size(), text,
                                                        bytes.substr(8 + header_length)));
}

// Appends an F16 tensor to a shard.
void append_tensor(const fs::path& shard, const std::string& name, std::vector<int64_t> shape) {
  const std::string bytes = testing::read_file(shard);
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | uint8_t(bytes[i]);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_length));
  std::string data = bytes.substr(8 + header_length);
  const size_t nbytes = size_t(shape[0] * shape[1]) * 2;
  header[name] = {{"dtype", "F16"},
                  {"shape", shape},
                  {"data_offsets", {data.size(), data.size() + nbytes}}};
  data += std::string(nbytes, '\0');
  const std::string text = header.dump();
  testing::write_file(shard, testing::safetensors_bytes(text.size(), text, data));
}

TEST(Bundle, OpensTinyHfNamesMxfp4) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  const Bundle bundle = Bundle::open(scratch.path());
  EXPECT_EQ(bundle.layout(), BundleLayout::hf_names);
  EXPECT_EQ(bundle.tensors().num_shards(), 2u);
  EXPECT_EQ(bundle.config().text.num_hidden_layers, 5);
  // Text linears with `in` a multiple of 32: 3 own-KV layers x 9 + 2 shared x 7 +
  // embed_tokens_per_layer + per_layer_model_projection (embed_tokens stays 16-bit).
  EXPECT_EQ(bundle.num_quantized_tensors(), 3 * 9 + 2 * 7 + 2);
  EXPECT_TRUE(bundle.unused_tensors().empty());
  EXPECT_EQ(bundle.text_tensor_name("layers.3.mlp.up_proj.weight"),
            "language_model.model.layers.3.mlp.up_proj.weight");

  const TokenizerConfig& tokenizer = bundle.tokenizer_config();
  EXPECT_EQ(tokenizer.bos_token, "<bos>");
  EXPECT_EQ(tokenizer.eos_token, "<eos>");
  EXPECT_TRUE(tokenizer.add_bos_token);
  EXPECT_EQ(tokenizer.chat_template, "{{ bos_token }}from tokenizer_config");
  EXPECT_EQ(bundle.generation_config().eos_token_ids, (std::vector<int32_t>{1, 106, 50}));
  EXPECT_TRUE(bundle.processor_config().is_null());
  EXPECT_FALSE(bundle.jang_config().has_value());
}

TEST(Bundle, LinearFillsMxfp4WeightMatrix) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  const Bundle bundle = Bundle::open(scratch.path());
  const std::string module = "language_model.model.layers.3.mlp.gate_proj";
  const WeightMatrix matrix = bundle.linear(module);
  EXPECT_EQ(matrix.format, WeightFormat::mxfp4);
  EXPECT_EQ(matrix.rows, 256);  // double-wide on a KV-shared layer
  EXPECT_EQ(matrix.cols, 64);
  EXPECT_EQ(matrix.bits, 4);
  EXPECT_EQ(matrix.group_size, 32);
  EXPECT_EQ(matrix.data, bundle.tensor(module + ".weight").data);
  EXPECT_EQ(matrix.e8m0_scales, bundle.tensor(module + ".scales").data);

  const WeightMatrix embed = bundle.linear("language_model.model.embed_tokens");
  EXPECT_EQ(embed.format, WeightFormat::f16);
  EXPECT_EQ(embed.rows, 96);
  EXPECT_EQ(embed.cols, 64);

  const WeightMatrix vision = bundle.linear("vision_tower.encoder.layers.1.mlp.down_proj.linear");
  EXPECT_EQ(vision.format, WeightFormat::bf16);
  EXPECT_EQ(vision.rows, 64);
  EXPECT_EQ(vision.cols, 128);
  EXPECT_THROW(bundle.linear("language_model.model.layers.0.nothing"), std::runtime_error);
}

TEST(Bundle, OpensTinyMlxVlmAffineSingleFile) {
  ScratchDir scratch;
  TinyBundleOptions options;
  options.layout = BundleLayout::mlx_vlm;
  options.quant_mode = "affine";
  options.num_shards = 1;
  write_tiny_bundle(scratch.path(), options);
  const Bundle bundle = Bundle::open(scratch.path());
  EXPECT_EQ(bundle.layout(), BundleLayout::mlx_vlm);
  EXPECT_EQ(bundle.tensors().num_shards(), 1u);
  EXPECT_EQ(bundle.config().quantization.key, "quantization");
  // Groups of 64 leave out per_layer_projection (in = 32) and embed_tokens_per_layer (in = 160).
  EXPECT_EQ(bundle.num_quantized_tensors(), 3 * 8 + 2 * 6 + 1);

  const WeightMatrix matrix = bundle.linear("language_model.model.layers.0.self_attn.q_proj");
  EXPECT_EQ(matrix.format, WeightFormat::affine);
  EXPECT_EQ(matrix.rows, 64);
  EXPECT_EQ(matrix.cols, 64);
  EXPECT_EQ(matrix.group_size, 64);
  EXPECT_EQ(matrix.affine_scale_type, ScaleType::f16);
  EXPECT_NE(matrix.affine_biases, nullptr);
}

TEST(Bundle, OpensTextOnlyUnquantized) {
  ScratchDir scratch;
  TinyBundleOptions options;
  options.quant_mode = "";
  options.vision = false;
  options.audio = false;
  write_tiny_bundle(scratch.path(), options);
  const Bundle bundle = Bundle::open(scratch.path());
  EXPECT_EQ(bundle.num_quantized_tensors(), 0);
  EXPECT_FALSE(bundle.config().vision.has_value());
  EXPECT_EQ(bundle.linear("language_model.model.layers.0.mlp.up_proj").format, WeightFormat::f16);
}

TEST(Bundle, DetectsLayoutWithoutAudio) {
  for (const BundleLayout layout : {BundleLayout::hf_names, BundleLayout::mlx_vlm}) {
    ScratchDir scratch;
    TinyBundleOptions options;
    options.layout = layout;
    options.audio = false;
    write_tiny_bundle(scratch.path(), options);
    EXPECT_EQ(Bundle::open(scratch.path()).layout(), layout) << layout_name(layout);
  }
}

TEST(Bundle, ReadsSidecarFiles) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  testing::write_file(scratch.path() / "chat_template.jinja", "{{ messages }}");
  write_json(scratch.path() / "jang_config.json", {{"version", 2}, {"weight_format", "mxfp4"}});
  write_json(scratch.path() / "processor_config.json", {{"image_seq_length", 280}});
  const Bundle bundle = Bundle::open(scratch.path());
  EXPECT_EQ(bundle.tokenizer_config().chat_template, "{{ messages }}");
  ASSERT_TRUE(bundle.jang_config().has_value());
  EXPECT_EQ((*bundle.jang_config())["weight_format"], "mxfp4");
  EXPECT_EQ(bundle.processor_config()["image_seq_length"], 280);
}

TEST(Bundle, ToleratesSharedLayerKv) {
  ScratchDir scratch;
  TinyBundleOptions options;
  options.num_shards = 1;
  options.quant_mode = "";
  write_tiny_bundle(scratch.path(), options);
  // The k_proj a Hugging Face checkpoint keeps on KV-shared layer 4 (full: 1 head x 64).
  const std::string k_proj = "language_model.model.layers.4.self_attn.k_proj.weight";
  append_tensor(scratch.path() / "model.safetensors", k_proj, {64, 64});
  // A tensor outside the table, as Hugging Face's converter may write a vision pooler scale.
  append_tensor(scratch.path() / "model.safetensors", "vision_tower.pooler.scale", {1, 1});
  const Bundle bundle = Bundle::open(scratch.path());
  EXPECT_TRUE(bundle.tensors().contains(k_proj));
  EXPECT_EQ(bundle.unused_tensors(), (std::vector<std::string>{"vision_tower.pooler.scale"}));

  // Present optional tensors are still checked.
  ScratchDir wrong;
  write_tiny_bundle(wrong.path(), options);
  append_tensor(wrong.path() / "model.safetensors", k_proj, {32, 64});
  expect_open_error(wrong.path(), {k_proj + ": expected shape [64, 64], found [32, 64]"});
}

TEST(Bundle, TensorF32Widens) {
  ScratchDir scratch;
  TinyBundleOptions options;
  options.num_shards = 1;
  write_tiny_bundle(scratch.path(), options);
  const Bundle bundle = Bundle::open(scratch.path());
  // Norm weights are F16 filled with byte pairs (0x00, 0x3c) = 1.0, alternating with
  // (0x0e, 0x3c) = 1.013671875.
  const std::vector<float> norm = bundle.tensor_f32("language_model.model.norm.weight");
  ASSERT_EQ(norm.size(), 64u);
  EXPECT_FLOAT_EQ(norm[0], fp16_to_float(0x3c00));
  EXPECT_FLOAT_EQ(norm[1], fp16_to_float(0x3c0e));
  const std::vector<float> vision =
      bundle.tensor_f32("vision_tower.encoder.layers.0.input_layernorm.weight");
  EXPECT_FLOAT_EQ(vision[0], bf16_to_float(0x3c00));
  EXPECT_THROW(bundle.tensor_f32("language_model.model.layers.0.mlp.up_proj.weight"),
               std::invalid_argument);
}

TEST(BundleBadInput, MissingFiles) {
  ScratchDir scratch;
  expect_open_error(scratch.path() / "nope", {"nope: bundle folder not found"});

  write_tiny_bundle(scratch.path());
  fs::remove(scratch.path() / "tokenizer.json");
  expect_open_error(scratch.path(), {"tokenizer.json: not found"});

  fs::remove(scratch.path() / "config.json");
  expect_open_error(scratch.path(), {"config.json: not found"});
}

TEST(BundleBadInput, MissingShard) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  fs::remove(scratch.path() / kShard2);
  expect_open_error(scratch.path(),
                    {"model.safetensors.index.json: weight_map.", "shard " + std::string(kShard2) +
                                                                     " not found"});
}

TEST(BundleBadInput, TruncatedShard) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  const fs::path shard = scratch.path() / kShard1;
  fs::resize_file(shard, fs::file_size(shard) - 100);
  expect_open_error(scratch.path(), {kShard1, "the file is truncated"});
}

TEST(BundleBadInput, IndexNamesTensorShardLacks) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  const std::string tensor = "language_model.model.layers.2.mlp.up_proj.weight";
  const std::string shard = shard_of(scratch.path(), tensor);
  drop_tensor(scratch.path(), tensor);
  expect_open_error(scratch.path(), {shard + ": " + tensor, "missing from this shard"});
}

TEST(BundleBadInput, MissingRequiredTensor) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  const std::string tensor = "language_model.model.layers.1.post_attention_layernorm.weight";
  drop_tensor(scratch.path(), tensor);
  auto index = read_json(scratch.path() / "model.safetensors.index.json");
  index["weight_map"].erase(tensor);
  write_json(scratch.path() / "model.safetensors.index.json", index);
  expect_open_error(scratch.path(),
                    {scratch.path().string() + ": missing tensor " + tensor,
                     "(required by text_config.num_hidden_layers)"});
}

TEST(BundleBadInput, WrongShape) {
  ScratchDir scratch;
  TinyBundleOptions options;
  options.quant_mode = "";
  write_tiny_bundle(scratch.path(), options);
  const std::string tensor = "language_model.model.layers.0.self_attn.k_proj.weight";
  // Same byte count (32 x 64 = 64 x 32), wrong orientation.
  edit_entry(scratch.path(), tensor, [](nlohmann::json& entry) { entry["shape"] = {64, 32}; });
  const fs::path shard = scratch.path() / shard_of(scratch.path(), tensor);
  expect_open_error(scratch.path(),
                    {shard.string() + ": " + tensor + ": expected shape [32, 64], found [64, 32]"});
}

TEST(BundleBadInput, WrongQuantizedShape) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  const std::string tensor = "language_model.model.layers.0.mlp.down_proj.scales";
  // down_proj is [64, 128], so its scales are [64, 4]. Claim [128, 2], the same byte count.
  edit_entry(scratch.path(), tensor, [](nlohmann::json& entry) { entry["shape"] = {128, 2}; });
  expect_open_error(scratch.path(), {tensor + ": expected shape [64, 4], found [128, 2]"});
}

TEST(BundleBadInput, WrongDtype) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  const std::string tensor = "language_model.model.layers.0.mlp.up_proj.weight";
  // U32 [128, 8] has the bytes of F32 [128, 8].
  edit_entry(scratch.path(), tensor, [](nlohmann::json& entry) { entry["dtype"] = "F32"; });
  expect_open_error(scratch.path(), {tensor + ": expected dtype U32, found F32"});

  const std::string norm = "language_model.model.norm.weight";
  edit_entry(scratch.path(), norm, [](nlohmann::json& entry) {
    entry["dtype"] = "U8";
    entry["shape"] = {128};
  });
  expect_open_error(scratch.path(), {norm + ": expected dtype F16, BF16 or F32, found U8"});
}

TEST(BundleBadInput, QuantizedWithoutQuantizationBlock) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  auto config = read_json(scratch.path() / "config.json");
  config.erase("quantization");
  write_json(scratch.path() / "config.json", config);
  expect_open_error(scratch.path(),
                    {".scales: quantized weight, but config.json has no quantization"});
}

TEST(BundleBadInput, UnsupportedQuantizationMode) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  auto config = read_json(scratch.path() / "config.json");
  config["quantization"]["mode"] = "nvfp4";
  write_json(scratch.path() / "config.json", config);
  expect_open_error(scratch.path(),
                    {"config.json: quantization.mode: unsupported quantization mode \"nvfp4\""});
}

TEST(BundleBadInput, ConfigFieldWrongType) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  auto config = read_json(scratch.path() / "config.json");
  config["text_config"]["num_attention_heads"] = 2.5;
  write_json(scratch.path() / "config.json", config);
  expect_open_error(scratch.path(),
                    {"config.json: text_config.num_attention_heads: expected an integer, "
                     "found number"});
}

TEST(BundleBadInput, UnknownModelType) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  auto config = read_json(scratch.path() / "config.json");
  config["model_type"] = "gemma3n";
  write_json(scratch.path() / "config.json", config);
  expect_open_error(scratch.path(),
                    {"config.json: model_type: unsupported model type \"gemma3n\""});
}

TEST(BundleBadInput, BadTokenizerConfig) {
  ScratchDir scratch;
  write_tiny_bundle(scratch.path());
  write_json(scratch.path() / "tokenizer_config.json", {{"bos_token", 5}});
  expect_open_error(scratch.path(), {"tokenizer_config.json: bos_token: expected a string"});
  testing::write_file(scratch.path() / "tokenizer_config.json", "{");
  expect_open_error(scratch.path(), {"tokenizer_config.json: invalid JSON"});
}

TEST(BundleBadInput, HuggingFaceNames) {
  ScratchDir scratch;
  TinyBundleOptions options;
  options.num_shards = 1;
  options.quant_mode = "";
  write_tiny_bundle(scratch.path(), options);
  testing::SafetensorsWriter writer;
  writer.add("model.language_model.embed_tokens.weight", "F16", {96, 64});
  writer.write(scratch.path() / "model.safetensors");
  expect_open_error(scratch.path(), {"model.language_model.embed_tokens.weight",
                                     "Hugging Face checkpoint names"});
}

// An mlx-lm Gemma 3 text bundle: "model.*" names, no per-layer inputs and no layer_scalar.
TEST(Bundle, OpensMlxLmGemma3Text) {
  ScratchDir scratch;
  nlohmann::json config = {{"model_type", "gemma3_text"},
                           {"hidden_size", 64},
                           {"intermediate_size", 128},
                           {"num_hidden_layers", 6},
                           {"num_attention_heads", 2},
                           {"num_key_value_heads", 1},
                           {"head_dim", 32},
                           {"vocab_size", 96},
                           {"sliding_window", 16},
                           {"sliding_window_pattern", 6},
                           {"query_pre_attn_scalar", 32},
                           {"rope_theta", 1000000.0},
                           {"rope_local_base_freq", 10000.0},
                           {"rope_scaling", {{"rope_type", "linear"}, {"factor", 8.0}}},
                           {"eos_token_id", {1, 106}}};
  write_json(scratch.path() / "config.json", config);
  write_json(scratch.path() / "tokenizer.json", {{"version", "1.0"}});
  const ModelConfig model = parse_model_config(scratch.path() / "config.json");
  testing::SafetensorsWriter writer;
  for (const auto& spec : model_tensor_table(model, BundleLayout::mlx_lm)) {
    const std::string name = spec.kind == TensorKind::linear ? spec.name + ".weight" : spec.name;
    writer.add(name, "BF16", spec.kind == TensorKind::scalar ? std::vector<int64_t>{} : spec.shape);
  }
  writer.write(scratch.path() / "model.safetensors");

  const Bundle bundle = Bundle::open(scratch.path());
  EXPECT_EQ(bundle.layout(), BundleLayout::mlx_lm);
  EXPECT_EQ(bundle.text_tensor_name("norm.weight"), "model.norm.weight");
  EXPECT_TRUE(bundle.tensors().contains("model.layers.5.self_attn.k_proj.weight"));
  EXPECT_FALSE(bundle.tensors().contains("model.layers.0.layer_scalar"));
  EXPECT_TRUE(bundle.text_config().is_full_attention(5));
  EXPECT_FALSE(bundle.text_config().is_full_attention(4));
  EXPECT_DOUBLE_EQ(bundle.text_config().rope_full.factor, 8.0);
  EXPECT_DOUBLE_EQ(bundle.text_config().rope_sliding.rope_theta, 10000.0);
  EXPECT_EQ(bundle.generation_config().eos_token_ids, (std::vector<int32_t>{1, 106}));
}

}  // namespace
}  // namespace mxgemma
