#include "bundle/config.h"

#include <algorithm>
#include <stdexcept>

#include "bundle/json_fields.h"

namespace mxgemma {

namespace {

int require_positive_int(const JsonFields& fields, const std::string& key) {
  const int value = fields.require_int(key);
  if (value <= 0) fields.fail(key, "expected a positive integer, found " + std::to_string(value));
  return value;
}

int get_non_negative_int(const JsonFields& fields, const std::string& key, int fallback) {
  const int value = fields.get_int(key, fallback);
  if (value < 0) {
    fields.fail(key, "expected a non-negative integer, found " + std::to_string(value));
  }
  return value;
}

// One rope_parameters entry ({"rope_type", "rope_theta", "partial_rotary_factor", "factor"}).
RopeParameters parse_rope_entry(const JsonFields& fields, const RopeParameters& defaults) {
  RopeParameters rope = defaults;
  rope.rope_type = fields.get_string("rope_type", rope.rope_type);
  rope.rope_theta = fields.get_double("rope_theta", rope.rope_theta);
  rope.partial_rotary_factor =
      fields.get_double("partial_rotary_factor", rope.partial_rotary_factor);
  rope.factor = fields.get_double("factor", rope.factor);
  if (rope.rope_type != "default" && rope.rope_type != "proportional" &&
      rope.rope_type != "linear") {
    fields.fail("rope_type", "unsupported rope_type \"" + rope.rope_type +
                                 "\" (supported: default, proportional, linear)");
  }
  if (rope.rope_theta <= 0) fields.fail("rope_theta", "expected a positive number");
  if (rope.partial_rotary_factor <= 0 || rope.partial_rotary_factor > 1) {
    fields.fail("partial_rotary_factor", "expected a number in (0, 1]");
  }
  if (rope.factor <= 0) fields.fail("factor", "expected a positive number");
  return rope;
}

// rope_parameters keyed by layer type (the Gemma 4 form), one rope_parameters object for every
// layer, or the older flat keys rope_theta (full layers), rope_local_base_freq (sliding layers)
// and rope_scaling (full layers).
void parse_rope(const JsonFields& text, TextConfig& config) {
  RopeParameters sliding_defaults;
  sliding_defaults.rope_theta = 10000.0;
  RopeParameters full_defaults;
  full_defaults.rope_theta = 1000000.0;

  if (auto rope = text.optional_object("rope_parameters")) {
    const bool per_type = rope->has("sliding_attention") || rope->has("full_attention");
    if (!per_type) {
      config.rope_sliding = parse_rope_entry(*rope, sliding_defaults);
      config.rope_full = parse_rope_entry(*rope, full_defaults);
      return;
    }
    auto sliding = rope->optional_object("sliding_attention");
    auto full = rope->optional_object("full_attention");
    config.rope_sliding = sliding ? parse_rope_entry(*sliding, sliding_defaults) : sliding_defaults;
    config.rope_full = full ? parse_rope_entry(*full, full_defaults) : full_defaults;
    return;
  }

  config.rope_sliding = sliding_defaults;
  config.rope_full = full_defaults;
  config.rope_sliding.rope_theta = text.get_double("rope_local_base_freq", 10000.0);
  config.rope_full.rope_theta = text.get_double("rope_theta", 1000000.0);
  config.rope_full.partial_rotary_factor = text.get_double("partial_rotary_factor", 1.0);
  if (auto scaling = text.optional_object("rope_scaling")) {
    config.rope_full = parse_rope_entry(*scaling, config.rope_full);
  }
}

// layer_types, or a pattern of (sliding_window_pattern - 1) sliding layers then one full layer.
void parse_layer_types(const JsonFields& text, TextConfig& config) {
  config.layer_types.clear();
  if (text.has("layer_types")) {
    const auto& list = text.raw("layer_types");
    if (!list.is_array()) {
      text.fail("layer_types", "expected a list of strings, found " + json_type_name(list));
    }
    if (int(list.size()) != config.num_hidden_layers) {
      text.fail("layer_types", "has " + std::to_string(list.size()) + " entries, but " +
                                   text.field_path("num_hidden_layers") + " is " +
                                   std::to_string(config.num_hidden_layers));
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string key = "layer_types[" + std::to_string(i) + "]";
      if (list[i] == "sliding_attention") {
        config.layer_types.push_back(LayerType::sliding_attention);
      } else if (list[i] == "full_attention") {
        config.layer_types.push_back(LayerType::full_attention);
      } else {
        text.fail(key, "expected \"sliding_attention\" or \"full_attention\", found " +
                           list[i].dump());
      }
    }
    // mlx-lm's gemma3_text reads only sliding_window_pattern, so a config whose two fields
    // disagree would run differently there.
    if (config.model_type == "gemma3_text" && text.has("sliding_window_pattern")) {
      const int pattern = require_positive_int(text, "sliding_window_pattern");
      for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
        const bool full = (layer + 1) % pattern == 0;
        if (full != (config.layer_types[layer] == LayerType::full_attention)) {
          text.fail("layer_types", "layer " + std::to_string(layer) +
                                       " disagrees with sliding_window_pattern " +
                                       std::to_string(pattern));
        }
      }
    }
    return;
  }
  if (!text.has("sliding_window_pattern")) {
    text.fail("layer_types", "missing (and no sliding_window_pattern to derive it from)");
  }
  const int pattern = require_positive_int(text, "sliding_window_pattern");
  for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
    config.layer_types.push_back((layer + 1) % pattern == 0 ? LayerType::full_attention
                                                            : LayerType::sliding_attention);
  }
}

// Checks that every KV-shared layer has an earlier layer of its type with its own K/V.
void check_kv_sharing(const JsonFields& text, const TextConfig& config) {
  if (config.num_kv_shared_layers >= config.num_hidden_layers) {
    text.fail("num_kv_shared_layers", "is " + std::to_string(config.num_kv_shared_layers) +
                                          ", not below num_hidden_layers " +
                                          std::to_string(config.num_hidden_layers));
  }
  for (int layer = config.first_kv_shared_layer(); layer < config.num_hidden_layers; ++layer) {
    if (config.kv_source_layer(layer) < 0) {
      text.fail("num_kv_shared_layers",
                "KV-shared layer " + std::to_string(layer) +
                    " has no earlier layer of its type with its own K/V");
    }
  }
}

TextConfig parse_text_config(const JsonFields& text, const std::string& default_model_type) {
  TextConfig config;
  config.model_type = text.get_string("model_type", default_model_type);
  if (config.model_type != "gemma4_text" && config.model_type != "gemma3_text") {
    text.fail("model_type", "unsupported text model type \"" + config.model_type +
                                "\" (supported: gemma4_text, gemma3_text)");
  }
  if (text.get_bool("enable_moe_block", false)) {
    text.fail("enable_moe_block", "mixture-of-experts Gemma 4 models are not supported");
  }

  config.hidden_size = require_positive_int(text, "hidden_size");
  config.intermediate_size = require_positive_int(text, "intermediate_size");
  config.num_hidden_layers = require_positive_int(text, "num_hidden_layers");
  config.num_attention_heads = require_positive_int(text, "num_attention_heads");
  config.num_key_value_heads = require_positive_int(text, "num_key_value_heads");
  config.num_global_key_value_heads = get_non_negative_int(text, "num_global_key_value_heads", 0);
  config.head_dim = require_positive_int(text, "head_dim");
  config.global_head_dim = get_non_negative_int(text, "global_head_dim", 0);
  config.vocab_size = require_positive_int(text, "vocab_size");
  config.max_position_embeddings = get_non_negative_int(text, "max_position_embeddings", 0);
  config.rms_norm_eps = text.get_double("rms_norm_eps", 1e-6);
  config.hidden_size_per_layer_input = get_non_negative_int(text, "hidden_size_per_layer_input", 0);
  config.vocab_size_per_layer_input =
      get_non_negative_int(text, "vocab_size_per_layer_input", config.vocab_size);
  config.num_kv_shared_layers = get_non_negative_int(text, "num_kv_shared_layers", 0);
  config.use_double_wide_mlp = text.get_bool("use_double_wide_mlp", false);
  config.attention_k_eq_v = text.get_bool("attention_k_eq_v", false);
  config.final_logit_softcapping = text.get_double("final_logit_softcapping", 0.0);
  // mlx-lm's and transformers' Gemma 3 default is 256; Gemma 4 ignores the field.
  const double default_query_scalar = config.model_type == "gemma3_text" ? 256.0 : 0.0;
  config.query_pre_attn_scalar = text.get_double("query_pre_attn_scalar", default_query_scalar);
  config.hidden_activation = text.get_string("hidden_activation", config.hidden_activation);
  config.tie_word_embeddings = text.get_bool("tie_word_embeddings", true);
  if (!config.tie_word_embeddings) {
    text.fail("tie_word_embeddings", "untied output embeddings (lm_head) are not supported");
  }

  parse_layer_types(text, config);
  const bool has_sliding = std::count(config.layer_types.begin(), config.layer_types.end(),
                                      LayerType::sliding_attention) > 0;
  config.sliding_window = has_sliding ? require_positive_int(text, "sliding_window")
                                      : get_non_negative_int(text, "sliding_window", 0);
  parse_rope(text, config);
  check_kv_sharing(text, config);
  return config;
}

VisionConfig parse_vision_config(const JsonFields& vision) {
  VisionConfig config;
  config.hidden_size = require_positive_int(vision, "hidden_size");
  config.intermediate_size = require_positive_int(vision, "intermediate_size");
  config.num_hidden_layers = require_positive_int(vision, "num_hidden_layers");
  config.num_attention_heads = require_positive_int(vision, "num_attention_heads");
  config.num_key_value_heads = vision.get_int("num_key_value_heads", config.num_attention_heads);
  config.head_dim = require_positive_int(vision, "head_dim");
  config.patch_size = require_positive_int(vision, "patch_size");
  config.pooling_kernel_size = vision.get_int("pooling_kernel_size", 3);
  config.position_embedding_size = vision.get_int("position_embedding_size", 10240);
  config.default_output_length = vision.get_int("default_output_length", 280);
  config.use_clipped_linears = vision.get_bool("use_clipped_linears", false);
  config.standardize = vision.get_bool("standardize", false);
  config.rms_norm_eps = vision.get_double("rms_norm_eps", 1e-6);
  if (auto rope = vision.optional_object("rope_parameters")) {
    config.rope_theta = rope->get_double("rope_theta", config.rope_theta);
  }
  for (const char* key : {"num_key_value_heads", "pooling_kernel_size", "position_embedding_size",
                          "default_output_length"}) {
    if (vision.get_int(key, 1) <= 0) vision.fail(key, "expected a positive integer");
  }
  return config;
}

AudioConfig parse_audio_config(const JsonFields& audio) {
  AudioConfig config;
  config.hidden_size = require_positive_int(audio, "hidden_size");
  config.num_hidden_layers = require_positive_int(audio, "num_hidden_layers");
  config.num_attention_heads = require_positive_int(audio, "num_attention_heads");
  if (config.hidden_size % config.num_attention_heads != 0) {
    audio.fail("num_attention_heads", "does not divide hidden_size " +
                                          std::to_string(config.hidden_size));
  }
  config.subsampling_conv_channels = audio.get_int_list("subsampling_conv_channels");
  if (config.subsampling_conv_channels.size() != 2) {
    audio.fail("subsampling_conv_channels", audio.has("subsampling_conv_channels")
                                                ? "expected 2 channel counts"
                                                : "missing");
  }
  for (int channels : config.subsampling_conv_channels) {
    if (channels <= 0) audio.fail("subsampling_conv_channels", "expected positive integers");
  }
  config.conv_kernel_size = require_positive_int(audio, "conv_kernel_size");
  config.attention_chunk_size = audio.get_int("attention_chunk_size", 12);
  config.attention_context_left = audio.get_int("attention_context_left", 13);
  config.attention_context_right = audio.get_int("attention_context_right", 0);
  config.attention_logit_cap = audio.get_double("attention_logit_cap", 50.0);
  config.residual_weight = audio.get_double("residual_weight", 0.5);
  config.use_clipped_linears = audio.get_bool("use_clipped_linears", true);
  // null means no output projection; the embedder then takes hidden_size features.
  config.output_proj_dims = get_non_negative_int(audio, "output_proj_dims", 0);
  config.input_feat_size = audio.get_int("input_feat_size", 128);
  config.rms_norm_eps = audio.get_double("rms_norm_eps", 1e-6);
  config.gradient_clipping = audio.get_double("gradient_clipping", 1e10);
  if (!(config.gradient_clipping > 0.0)) audio.fail("gradient_clipping", "expected a positive number");
  config.hidden_act = audio.get_string("hidden_act", "silu");
  return config;
}

// Defaults of MLX's quantization_params_from_mode for the modes mxgemma runs.
QuantSpec default_spec(const std::string& mode) {
  QuantSpec spec;
  spec.mode = mode;
  spec.bits = 4;
  spec.group_size = mode == "mxfp4" ? 32 : 64;
  return spec;
}

// Parses {"mode", "bits", "group_size"}; a missing mode is affine, as in MLX's to_quantized.
QuantSpec parse_quant_spec(const JsonFields& block, const std::string& default_mode) {
  const std::string mode = block.get_string("mode", default_mode);
  if (mode != "mxfp4" && mode != "affine") {
    block.fail("mode", "unsupported quantization mode \"" + mode +
                           "\" (supported: mxfp4, and affine with 4 or 8 bits)");
  }
  QuantSpec spec = default_spec(mode);
  spec.bits = block.get_int("bits", spec.bits);
  spec.group_size = block.get_int("group_size", spec.group_size);
  if (mode == "mxfp4" && (spec.bits != 4 || spec.group_size != 32)) {
    block.fail("bits", "mxfp4 needs bits 4 and group_size 32, found bits " +
                           std::to_string(spec.bits) + " and group_size " +
                           std::to_string(spec.group_size));
  }
  if (mode == "affine") {
    if (spec.bits != 4 && spec.bits != 8) {
      block.fail("bits", "unsupported quantization mode affine with " + std::to_string(spec.bits) +
                             " bits (supported: 4, 8)");
    }
    if (spec.group_size != 32 && spec.group_size != 64 && spec.group_size != 128) {
      block.fail("group_size", "expected 32, 64 or 128 for affine, found " +
                                   std::to_string(spec.group_size));
    }
  }
  return spec;
}

// The quantization block. Dict-valued keys are per-module overrides, `false` marks a module
// as not quantized and string-valued keys (converter notes) are ignored.
QuantizationConfig parse_quantization(const JsonFields& top) {
  QuantizationConfig quantization;
  const char* key = top.has("quantization") ? "quantization" : "quantization_config";
  auto block = top.optional_object(key);
  if (!block) return quantization;
  if (block->has("quant_method") && !block->has("bits")) {
    block->fail("quant_method", "unsupported quantization method " +
                                    block->raw("quant_method").dump() +
                                    " (supported: MLX mxfp4 and affine)");
  }
  quantization.present = true;
  quantization.key = key;
  quantization.base = parse_quant_spec(*block, "affine");
  for (const auto& [module, value] : block->object().items()) {
    if (value.is_object()) {
      quantization.overrides[module] = parse_quant_spec(*block->optional_object(module), "affine");
    } else if (value.is_boolean() && !value.get<bool>()) {
      quantization.overrides[module] = std::nullopt;
    }
  }
  return quantization;
}

int32_t get_token_id(const JsonFields& fields, const std::string& key) {
  return fields.get_int(key, -1);
}

}  // namespace

int TextConfig::kv_source_layer(int layer) const {
  if (!is_kv_shared(layer)) return layer;
  for (int source = first_kv_shared_layer() - 1; source >= 0; --source) {
    if (layer_types[source] == layer_types[layer]) return source;
  }
  return -1;
}

int TextConfig::layer_head_dim(int layer) const {
  return is_full_attention(layer) && global_head_dim > 0 ? global_head_dim : head_dim;
}

int TextConfig::layer_kv_heads(int layer) const {
  // Only full layers with K = V use num_global_key_value_heads (the 26B/31B variants).
  if (is_full_attention(layer) && attention_k_eq_v && num_global_key_value_heads > 0) {
    return num_global_key_value_heads;
  }
  return num_key_value_heads;
}

int TextConfig::layer_intermediate_size(int layer) const {
  return use_double_wide_mlp && is_kv_shared(layer) ? 2 * intermediate_size : intermediate_size;
}

std::optional<QuantSpec> QuantizationConfig::spec_for(const std::string& module_path) const {
  auto it = overrides.find(module_path);
  if (it != overrides.end()) return it->second;
  if (!present) return std::nullopt;
  return base;
}

ModelConfig parse_model_config(const std::filesystem::path& config_json) {
  const nlohmann::json json = read_json_file(config_json);
  const std::string file = config_json.string();
  if (!json.is_object()) {
    throw std::runtime_error(file + ": expected a JSON object, found " + json_type_name(json));
  }
  const JsonFields top(json, file, "");

  ModelConfig config;
  config.model_type = top.require_string("model_type");
  if (config.model_type == "gemma4") {
    config.text = parse_text_config(top.require_object("text_config"), "gemma4_text");
    if (auto vision = top.optional_object("vision_config")) {
      config.vision = parse_vision_config(*vision);
    }
    if (auto audio = top.optional_object("audio_config")) {
      config.audio = parse_audio_config(*audio);
    }
  } else if (config.model_type == "gemma4_text" || config.model_type == "gemma3_text") {
    config.text = parse_text_config(top, config.model_type);
  } else {
    top.fail("model_type", "unsupported model type \"" + config.model_type +
                               "\" (supported: gemma4, gemma4_text, gemma3_text)");
  }
  config.quantization = parse_quantization(top);
  config.has_quantization_config = top.has("quantization_config");

  config.image_token_id = get_token_id(top, "image_token_id");
  config.audio_token_id = get_token_id(top, "audio_token_id");
  config.video_token_id = get_token_id(top, "video_token_id");
  config.boi_token_id = get_token_id(top, "boi_token_id");
  config.eoi_token_id = get_token_id(top, "eoi_token_id");
  config.boa_token_id = get_token_id(top, "boa_token_id");
  // Hugging Face writes eoa_token_index; mlx-vlm reads eoa_token_id.
  config.eoa_token_id = top.has("eoa_token_id") ? get_token_id(top, "eoa_token_id")
                                                : get_token_id(top, "eoa_token_index");
  config.eos_token_ids = top.get_int_or_int_list("eos_token_id");
  if (config.eos_token_ids.empty() && config.model_type == "gemma4") {
    config.eos_token_ids = top.require_object("text_config").get_int_or_int_list("eos_token_id");
  }
  return config;
}

GenerationConfig parse_generation_config(const std::filesystem::path& generation_config_json,
                                         const ModelConfig& model) {
  GenerationConfig generation;
  const nlohmann::json json = read_json_file(generation_config_json);
  const std::string file = generation_config_json.string();
  if (!json.is_object()) {
    throw std::runtime_error(file + ": expected a JSON object, found " + json_type_name(json));
  }
  const JsonFields fields(json, file, "");

  // Union of both files' eos ids, generation_config.json's first.
  generation.eos_token_ids = fields.get_int_or_int_list("eos_token_id");
  for (int32_t id : model.eos_token_ids) {
    if (std::find(generation.eos_token_ids.begin(), generation.eos_token_ids.end(), id) ==
        generation.eos_token_ids.end()) {
      generation.eos_token_ids.push_back(id);
    }
  }
  generation.bos_token_id = fields.get_int("bos_token_id", generation.bos_token_id);
  generation.pad_token_id = fields.get_int("pad_token_id", generation.pad_token_id);
  generation.do_sample = fields.get_bool("do_sample", false);
  generation.temperature = fields.optional_double("temperature");
  generation.top_k = fields.optional_int("top_k");
  generation.top_p = fields.optional_double("top_p");
  generation.min_p = fields.optional_double("min_p");
  generation.repetition_penalty = fields.optional_double("repetition_penalty");

  if (generation.temperature && *generation.temperature < 0) {
    fields.fail("temperature", "expected a non-negative number");
  }
  if (generation.top_k && *generation.top_k < 0) {
    fields.fail("top_k", "expected a non-negative integer");
  }
  if (generation.top_p && (*generation.top_p <= 0 || *generation.top_p > 1)) {
    fields.fail("top_p", "expected a number in (0, 1]");
  }
  if (generation.min_p && (*generation.min_p < 0 || *generation.min_p > 1)) {
    fields.fail("min_p", "expected a number in [0, 1]");
  }
  if (generation.repetition_penalty && *generation.repetition_penalty <= 0) {
    fields.fail("repetition_penalty", "expected a positive number");
  }
  return generation;
}

GenerationConfig default_generation_config(const ModelConfig& model) {
  GenerationConfig generation;
  generation.eos_token_ids = model.eos_token_ids;
  return generation;
}

}  // namespace mxgemma
