#include "bundle/tensor_table.h"

namespace mxgemma {

namespace {

// Appends specs with a shared "required by" field.
class TableBuilder {
 public:
  explicit TableBuilder(std::vector<TensorSpec>& table) : table_(table) {}

  void set_required_by(std::string field) { required_by_ = std::move(field); }

  void linear(const std::string& module, int64_t out, int64_t in, bool required = true) {
    add(module, TensorKind::linear, {out, in}, required);
  }
  void dense(const std::string& name, std::vector<int64_t> shape, bool required = true) {
    add(name, TensorKind::dense, std::move(shape), required);
  }
  void scalar(const std::string& name, bool required = true) {
    add(name, TensorKind::scalar, {}, required);
  }
  // A Gemma 4 ClippableLinear: the Linear under "<module>.linear" and its four clip bounds.
  void clipped_linear(const std::string& module, int64_t out, int64_t in, bool clip_bounds) {
    linear(module + ".linear", out, in);
    for (const char* bound : {"input_min", "input_max", "output_min", "output_max"}) {
      scalar(module + "." + bound, clip_bounds);
    }
  }

 private:
  void add(const std::string& name, TensorKind kind, std::vector<int64_t> shape, bool required) {
    table_.push_back(TensorSpec{name, kind, std::move(shape), required, required_by_});
  }

  std::vector<TensorSpec>& table_;
  std::string required_by_;
};

void add_text_layer(TableBuilder& add, const TextConfig& text, const std::string& prefix,
                    int layer) {
  const std::string p = prefix + "layers." + std::to_string(layer) + ".";
  const int64_t hidden = text.hidden_size;
  const int64_t head_dim = text.layer_head_dim(layer);
  const int64_t q_width = int64_t(text.num_attention_heads) * head_dim;
  const int64_t kv_width = int64_t(text.layer_kv_heads(layer)) * head_dim;
  const bool own_kv = !text.is_kv_shared(layer);
  // Full layers with attention_k_eq_v reuse the K projection as V.
  const bool has_v_proj = !(text.attention_k_eq_v && text.is_full_attention(layer));

  add.linear(p + "self_attn.q_proj", q_width, hidden);
  add.linear(p + "self_attn.k_proj", kv_width, hidden, own_kv);
  if (has_v_proj) add.linear(p + "self_attn.v_proj", kv_width, hidden, own_kv);
  add.linear(p + "self_attn.o_proj", hidden, q_width);
  add.dense(p + "self_attn.q_norm.weight", {head_dim});
  add.dense(p + "self_attn.k_norm.weight", {head_dim}, own_kv);

  const int64_t intermediate = text.layer_intermediate_size(layer);
  add.linear(p + "mlp.gate_proj", intermediate, hidden);
  add.linear(p + "mlp.up_proj", intermediate, hidden);
  add.linear(p + "mlp.down_proj", hidden, intermediate);

  for (const char* norm : {"input_layernorm", "post_attention_layernorm",
                           "pre_feedforward_layernorm", "post_feedforward_layernorm"}) {
    add.dense(p + norm + ".weight", {hidden});
  }
  if (text.hidden_size_per_layer_input > 0) {
    const int64_t per_layer = text.hidden_size_per_layer_input;
    add.linear(p + "per_layer_input_gate", per_layer, hidden);
    add.linear(p + "per_layer_projection", hidden, per_layer);
    add.dense(p + "post_per_layer_input_norm.weight", {hidden});
  }
  if (text.model_type == "gemma4_text") add.scalar(p + "layer_scalar");
}

void add_text_tensors(std::vector<TensorSpec>& table, const TextConfig& text,
                      const std::string& prefix) {
  TableBuilder add(table);
  const int64_t hidden = text.hidden_size;

  add.set_required_by("text_config.vocab_size");
  add.linear(prefix + "embed_tokens", text.vocab_size, hidden);
  add.set_required_by("text_config.hidden_size");
  add.dense(prefix + "norm.weight", {hidden});

  if (text.hidden_size_per_layer_input > 0) {
    const int64_t all_layers = int64_t(text.num_hidden_layers) * text.hidden_size_per_layer_input;
    add.set_required_by("text_config.hidden_size_per_layer_input");
    add.linear(prefix + "embed_tokens_per_layer", text.vocab_size_per_layer_input, all_layers);
    add.linear(prefix + "per_layer_model_projection", all_layers, hidden);
    add.dense(prefix + "per_layer_projection_norm.weight", {text.hidden_size_per_layer_input});
  }

  add.set_required_by("text_config.num_hidden_layers");
  for (int layer = 0; layer < text.num_hidden_layers; ++layer) {
    add_text_layer(add, text, prefix, layer);
  }
}

void add_vision_tensors(std::vector<TensorSpec>& table, const VisionConfig& vision,
                        const TextConfig& text) {
  TableBuilder add(table);
  add.set_required_by("vision_config");
  const std::string p = "vision_tower.";
  const int64_t hidden = vision.hidden_size;
  const int64_t q_width = int64_t(vision.num_attention_heads) * vision.head_dim;
  const int64_t kv_width = int64_t(vision.num_key_value_heads) * vision.head_dim;
  const bool clip = vision.use_clipped_linears;

  add.linear(p + "patch_embedder.input_proj", hidden, 3 * int64_t(vision.patch_size) *
                                                          vision.patch_size);
  add.dense(p + "patch_embedder.position_embedding_table",
            {2, vision.position_embedding_size, hidden});

  for (int layer = 0; layer < vision.num_hidden_layers; ++layer) {
    const std::string l = p + "encoder.layers." + std::to_string(layer) + ".";
    add.clipped_linear(l + "self_attn.q_proj", q_width, hidden, clip);
    add.clipped_linear(l + "self_attn.k_proj", kv_width, hidden, clip);
    add.clipped_linear(l + "self_attn.v_proj", kv_width, hidden, clip);
    add.clipped_linear(l + "self_attn.o_proj", hidden, q_width, clip);
    add.dense(l + "self_attn.q_norm.weight", {vision.head_dim});
    add.dense(l + "self_attn.k_norm.weight", {vision.head_dim});
    add.clipped_linear(l + "mlp.gate_proj", vision.intermediate_size, hidden, clip);
    add.clipped_linear(l + "mlp.up_proj", vision.intermediate_size, hidden, clip);
    add.clipped_linear(l + "mlp.down_proj", hidden, vision.intermediate_size, clip);
    for (const char* norm : {"input_layernorm", "post_attention_layernorm",
                             "pre_feedforward_layernorm", "post_feedforward_layernorm"}) {
      add.dense(l + norm + ".weight", {hidden});
    }
  }
  if (vision.standardize) {
    add.set_required_by("vision_config.standardize");
    add.dense(p + "std_bias", {hidden});
    add.dense(p + "std_scale", {hidden});
  }

  add.set_required_by("vision_config");
  add.linear("embed_vision.embedding_projection", text.hidden_size, hidden);
}

// Frequency bins left after the two stride-2, kernel-3, padding-1 subsampling convolutions.
int64_t audio_subsampled_features(int64_t input_features) {
  for (int block = 0; block < 2; ++block) input_features = (input_features + 2 - 3) / 2 + 1;
  return input_features;
}

void add_audio_tensors(std::vector<TensorSpec>& table, const AudioConfig& audio,
                       const TextConfig& text, BundleLayout layout) {
  TableBuilder add(table);
  add.set_required_by("audio_config");
  const std::string p = "audio_tower.";
  const int64_t hidden = audio.hidden_size;
  const int64_t channels0 = audio.subsampling_conv_channels[0];
  const int64_t channels1 = audio.subsampling_conv_channels[1];
  const bool clip = audio.use_clipped_linears;

  // Conv2d weights: PyTorch [out, in, kh, kw] in hf_names, MLX [out, kh, kw, in] otherwise.
  auto conv2d_shape = [&](int64_t out, int64_t in) -> std::vector<int64_t> {
    if (layout == BundleLayout::hf_names) return {out, in, 3, 3};
    return {out, 3, 3, in};
  };
  const std::string sscp = p + "subsample_conv_projection.";
  add.dense(sscp + "layer0.conv.weight", conv2d_shape(channels0, 1));
  add.dense(sscp + "layer0.norm.weight", {channels0});
  add.dense(sscp + "layer1.conv.weight", conv2d_shape(channels1, channels0));
  add.dense(sscp + "layer1.norm.weight", {channels1});
  add.linear(sscp + "input_proj_linear", hidden,
             audio_subsampled_features(audio.input_feat_size) * channels1);

  for (int layer = 0; layer < audio.num_hidden_layers; ++layer) {
    const std::string l = p + "layers." + std::to_string(layer) + ".";
    for (const char* ffw : {"feed_forward1.", "feed_forward2."}) {
      add.clipped_linear(l + ffw + "ffw_layer_1", 4 * hidden, hidden, clip);
      add.clipped_linear(l + ffw + "ffw_layer_2", hidden, 4 * hidden, clip);
      add.dense(l + ffw + "pre_layer_norm.weight", {hidden});
      add.dense(l + ffw + "post_layer_norm.weight", {hidden});
    }
    for (const char* projection : {"q_proj", "k_proj", "v_proj", "post"}) {
      add.clipped_linear(l + "self_attn." + projection, hidden, hidden, clip);
    }
    add.linear(l + "self_attn.relative_k_proj", hidden, hidden);
    add.dense(l + "self_attn.per_dim_scale", {hidden / audio.num_attention_heads});

    add.clipped_linear(l + "lconv1d.linear_start", 2 * hidden, hidden, clip);
    add.clipped_linear(l + "lconv1d.linear_end", hidden, hidden, clip);
    // Depthwise Conv1d [channels, kernel, 1] in both layouts (the JANG converter transposes it).
    add.dense(l + "lconv1d.depthwise_conv1d.weight", {hidden, audio.conv_kernel_size, 1});
    add.dense(l + "lconv1d.pre_layer_norm.weight", {hidden});
    add.dense(l + "lconv1d.conv_norm.weight", {hidden});
    for (const char* norm : {"norm_pre_attn", "norm_post_attn", "norm_out"}) {
      add.dense(l + norm + ".weight", {hidden});
    }
  }

  int64_t audio_output = hidden;
  if (audio.output_proj_dims > 0) {
    add.set_required_by("audio_config.output_proj_dims");
    audio_output = audio.output_proj_dims;
    add.linear(p + "output_proj", audio_output, hidden);
    add.dense(p + "output_proj.bias", {audio_output});
  }
  add.set_required_by("audio_config");
  add.linear("embed_audio.embedding_projection", text.hidden_size, audio_output);
}

}  // namespace

const char* layout_name(BundleLayout layout) {
  switch (layout) {
    case BundleLayout::hf_names:
      return "hf_names";
    case BundleLayout::mlx_vlm:
      return "mlx_vlm";
    case BundleLayout::mlx_lm:
      return "mlx_lm";
  }
  return "?";
}

std::string text_tensor_prefix(BundleLayout layout) {
  return layout == BundleLayout::mlx_lm ? "model." : "language_model.model.";
}

std::vector<TensorSpec> model_tensor_table(const ModelConfig& config, BundleLayout layout) {
  std::vector<TensorSpec> table;
  add_text_tensors(table, config.text, text_tensor_prefix(layout));
  if (config.vision) add_vision_tensors(table, *config.vision, config.text);
  if (config.audio) add_audio_tensors(table, *config.audio, config.text, layout);
  return table;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

}  // namespace mxgemma
