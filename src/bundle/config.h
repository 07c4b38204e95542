// Parsed bundle configuration: config.json (text, vision, audio, quantization),
// generation_config.json and the token ids a runtime needs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mxgemma {

enum class LayerType { sliding_attention, full_attention };

struct RopeParameters {
  std::string rope_type = "default";  // "default" or "proportional"
  double rope_theta = 10000.0;
  double partial_rotary_factor = 1.0;  // fraction of head_dim that is rotated ("proportional")
  double factor = 1.0;                 // linear scaling factor (Gemma 3 full layers may set 8)
};

struct TextConfig {
  std::string model_type;  // "gemma4_text" or "gemma3_text"
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int num_global_key_value_heads = 0;  // 0: same as num_key_value_heads
  int head_dim = 0;                    // sliding layers
  int global_head_dim = 0;             // full layers; 0: same as head_dim
  int sliding_window = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  int vocab_size = 0;
  int vocab_size_per_layer_input = 0;
  int hidden_size_per_layer_input = 0;  // 0: no per-layer inputs (Gemma 3)
  int num_kv_shared_layers = 0;
  bool use_double_wide_mlp = false;
  bool attention_k_eq_v = false;
  double final_logit_softcapping = 0.0;  // 0: none
  double query_pre_attn_scalar = 0.0;    // Gemma 3 attention scale is its rsqrt; 0: scale 1.0
  std::string hidden_activation = "gelu_pytorch_tanh";
  bool tie_word_embeddings = true;
  std::vector<LayerType> layer_types;
  RopeParameters rope_sliding;
  RopeParameters rope_full;

  bool is_full_attention(int layer) const { return layer_types[layer] == LayerType::full_attention; }
  int first_kv_shared_layer() const { return num_hidden_layers - num_kv_shared_layers; }
  bool is_kv_shared(int layer) const { return num_kv_shared_layers > 0 && layer >= first_kv_shared_layer(); }
  // The layer whose K/V a shared layer reads: the last non-shared layer of the same type.
  // Returns `layer` itself for a layer with its own KV, and -1 when no such layer exists (which
  // parse_model_config rejects).
  int kv_source_layer(int layer) const;
  int layer_head_dim(int layer) const;
  int layer_kv_heads(int layer) const;
  int layer_intermediate_size(int layer) const;  // doubled on KV-shared layers when use_double_wide_mlp
};

struct VisionConfig {
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;
  int patch_size = 0;
  int pooling_kernel_size = 0;
  int position_embedding_size = 0;
  int default_output_length = 0;
  bool use_clipped_linears = false;
  bool standardize = false;  // adds std_bias and std_scale [hidden_size] after the pooler
  double rms_norm_eps = 1e-6;
  double rope_theta = 100.0;
};

struct AudioConfig {
  int hidden_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  std::vector<int> subsampling_conv_channels;
  int conv_kernel_size = 0;
  int attention_chunk_size = 0;
  int attention_context_left = 0;
  int attention_context_right = 0;
  double attention_logit_cap = 0.0;
  double residual_weight = 0.5;
  bool use_clipped_linears = false;
  int output_proj_dims = 0;
  int input_feat_size = 128;
  double rms_norm_eps = 1e-6;
  // Bound of the clamps around the conformer's norms, capped at the fp32 maximum when applied.
  double gradient_clipping = 1e10;
  std::string hidden_act = "silu";  // activation of the feed-forward and light-conv blocks
};

struct QuantSpec {
  std::string mode = "affine";  // "mxfp4" or "affine"
  int bits = 4;
  int group_size = 64;
};

// The `quantization` block (or `quantization_config`) of config.json: the mode, bits and group
// size, and per-module overrides. Whether a module is quantized is decided per tensor, by a
// `.scales` tensor beside its `.weight`.
struct QuantizationConfig {
  bool present = false;
  std::string key;  // "quantization" or "quantization_config"
  QuantSpec base;
  // Module path -> its own spec; std::nullopt for a path marked `false` (not quantized).
  std::map<std::string, std::optional<QuantSpec>> overrides;

  // The spec for a module path (e.g. "language_model.model.layers.3.mlp.up_proj").
  std::optional<QuantSpec> spec_for(const std::string& module_path) const;
};

struct GenerationConfig {
  std::vector<int32_t> eos_token_ids;  // union of generation_config.json and config.json
  int32_t bos_token_id = 2;
  int32_t pad_token_id = 0;
  bool do_sample = false;
  std::optional<double> temperature;
  std::optional<int> top_k;
  std::optional<double> top_p;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
};

struct ModelConfig {
  std::string model_type;  // top level: "gemma4" (multimodal) or "gemma3_text"
  TextConfig text;
  std::optional<VisionConfig> vision;
  std::optional<AudioConfig> audio;
  QuantizationConfig quantization;
  // config.json has a "quantization_config" key, which mlx-vlm writes as a copy of
  // "quantization" and the JANG converter removes.
  bool has_quantization_config = false;
  int32_t image_token_id = -1;
  int32_t audio_token_id = -1;
  int32_t video_token_id = -1;
  int32_t boi_token_id = -1;
  int32_t eoi_token_id = -1;
  int32_t boa_token_id = -1;
  int32_t eoa_token_id = -1;
  std::vector<int32_t> eos_token_ids;  // from config.json
};

// Each throws std::runtime_error naming the file and the field at fault
// ("config.json: text_config.hidden_size: expected an integer").
ModelConfig parse_model_config(const std::filesystem::path& config_json);
GenerationConfig parse_generation_config(const std::filesystem::path& generation_config_json,
                                         const ModelConfig& model);
// What a bundle without generation_config.json gets: the defaults and config.json's eos ids.
GenerationConfig default_generation_config(const ModelConfig& model);

}  // namespace mxgemma
