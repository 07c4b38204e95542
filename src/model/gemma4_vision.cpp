#include "model/gemma4_vision.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/vector_ops.h"

namespace mxgemma {
namespace {

constexpr const char* kTower = "vision_tower.";

// text_config.use_bidirectional_attention from config.json, "" when absent or null.
std::string text_bidirectional_attention(const Bundle& bundle) {
  const std::filesystem::path path = bundle.dir() / "config.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("vision tower: failed to read " + path.string());
  const nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  if (config.is_discarded()) throw std::runtime_error("vision tower: invalid JSON in " + path.string());
  const auto text = config.find("text_config");
  if (text == config.end() || !text->is_object()) return "";
  const auto value = text->find("use_bidirectional_attention");
  if (value == text->end() || !value->is_string()) return "";
  return value->get<std::string>();
}

}  // namespace

Gemma4VisionModel::Gemma4VisionModel(const Bundle& bundle, ThreadPool& pool) : pool_(&pool) {
  if (!bundle.config().vision) {
    throw std::invalid_argument("vision tower: " + (bundle.dir() / "config.json").string() +
                                " has no vision_config");
  }
  config_ = *bundle.config().vision;
  text_hidden_size_ = bundle.text_config().hidden_size;

  // With "vision", transformers 5.25 (Gemma4Model) lets an image's tokens attend to each other in
  // the decoder's sliding layers only, while mlx-vlm 0.7.10 does it in the full-attention layers
  // too. E2B and the tiny fixtures leave it null, so both keep the decoder causal. The decoder
  // implements only that causal case, so any other value is rejected here.
  const std::string bidirectional = text_bidirectional_attention(bundle);
  if (!bidirectional.empty()) {
    throw std::runtime_error("vision tower: text_config.use_bidirectional_attention = \"" +
                             bidirectional + "\" in " + (bundle.dir() / "config.json").string() +
                             " is not supported (only null, as in Gemma 4 E2B)");
  }
  if (config_.head_dim % 4 != 0) {
    throw std::invalid_argument("vision tower: head_dim " + std::to_string(config_.head_dim) +
                                " is not a multiple of 4, so it cannot split into two rotary halves");
  }
  if (config_.num_key_value_heads <= 0 || config_.num_attention_heads % config_.num_key_value_heads != 0) {
    throw std::invalid_argument("vision tower: num_attention_heads " +
                                std::to_string(config_.num_attention_heads) +
                                " is not a multiple of num_key_value_heads " +
                                std::to_string(config_.num_key_value_heads));
  }

  const std::string p = kTower;
  input_proj_ = bundle.linear(p + "patch_embedder.input_proj");
  position_embedding_table_ = bundle.tensor_f32(p + "patch_embedder.position_embedding_table");
  layers_.resize(config_.num_hidden_layers);
  for (int i = 0; i < config_.num_hidden_layers; ++i) {
    Layer& layer = layers_[i];
    const std::string l = p + "encoder.layers." + std::to_string(i) + ".";  // layer prefix
    layer.q_proj = load_clipped_linear(bundle, l + "self_attn.q_proj", config_.use_clipped_linears);
    layer.k_proj = load_clipped_linear(bundle, l + "self_attn.k_proj", config_.use_clipped_linears);
    layer.v_proj = load_clipped_linear(bundle, l + "self_attn.v_proj", config_.use_clipped_linears);
    layer.o_proj = load_clipped_linear(bundle, l + "self_attn.o_proj", config_.use_clipped_linears);
    layer.gate_proj = load_clipped_linear(bundle, l + "mlp.gate_proj", config_.use_clipped_linears);
    layer.up_proj = load_clipped_linear(bundle, l + "mlp.up_proj", config_.use_clipped_linears);
    layer.down_proj = load_clipped_linear(bundle, l + "mlp.down_proj", config_.use_clipped_linears);
    layer.q_norm = bundle.tensor_f32(l + "self_attn.q_norm.weight");
    layer.k_norm = bundle.tensor_f32(l + "self_attn.k_norm.weight");
    layer.input_layernorm = bundle.tensor_f32(l + "input_layernorm.weight");
    layer.post_attention_layernorm = bundle.tensor_f32(l + "post_attention_layernorm.weight");
    layer.pre_feedforward_layernorm = bundle.tensor_f32(l + "pre_feedforward_layernorm.weight");
    layer.post_feedforward_layernorm = bundle.tensor_f32(l + "post_feedforward_layernorm.weight");
  }
  if (config_.standardize) {
    std_bias_ = bundle.tensor_f32(p + "std_bias");
    std_scale_ = bundle.tensor_f32(p + "std_scale");
  }
  embedding_projection_ = bundle.linear("embed_vision.embedding_projection");

  RopeParameters rope;
  rope.rope_type = "default";
  rope.rope_theta = config_.rope_theta;
  rope_ = RotaryEmbedding(rope, config_.head_dim / 2);
}

std::vector<float> Gemma4VisionModel::encode_patches(std::span<const float> pixel_values,
                                                     std::span<const int32_t> positions) {
  const int64_t patch_width = patch_dim();
  const int64_t max_patches = int64_t(positions.size()) / 2;
  if (positions.size() % 2 != 0 || int64_t(pixel_values.size()) != max_patches * patch_width) {
    throw std::invalid_argument("vision tower: pixel_values has " + std::to_string(pixel_values.size()) +
                                " values and positions " + std::to_string(positions.size()) +
                                "; expected [max_patches, " + std::to_string(patch_width) +
                                "] and [max_patches, 2]");
  }
  const int64_t cell = int64_t(config_.pooling_kernel_size) * config_.pooling_kernel_size;
  if (max_patches == 0 || max_patches % cell != 0) {
    throw std::invalid_argument("vision tower: max_patches " + std::to_string(max_patches) +
                                " is not a positive multiple of pooling_kernel_size^2 = " +
                                std::to_string(cell));
  }

  // Padding rows are (-1, -1). mlx-vlm and transformers mask them out as attention keys and zero
  // them before pooling, so they change no valid output and are skipped here.
  std::vector<int64_t> valid_rows;
  for (int64_t r = 0; r < max_patches; ++r) {
    const int32_t x = positions[2 * r], y = positions[2 * r + 1];
    if (x == -1 && y == -1) continue;
    if (x < 0 || y < 0 || x >= config_.position_embedding_size || y >= config_.position_embedding_size) {
      throw std::invalid_argument("vision tower: patch " + std::to_string(r) + " has position (" +
                                  std::to_string(x) + ", " + std::to_string(y) +
                                  "), outside [0, position_embedding_size = " +
                                  std::to_string(config_.position_embedding_size) + ")");
    }
    valid_rows.push_back(r);
  }
  if (valid_rows.empty()) throw std::invalid_argument("vision tower: the image has no valid patches");

  const int64_t rows = int64_t(valid_rows.size());
  const int64_t hidden = config_.hidden_size;
  std::vector<float> hidden_states(size_t(rows * hidden));
  embed_patches(pixel_values, positions, valid_rows, hidden_states.data());
  for (const Layer& layer : layers_) encoder_layer(layer, hidden_states.data(), rows);
  return pool(hidden_states.data(), positions, valid_rows, max_patches / cell);
}

// h = input_proj(2 (p - 0.5)) + T[0][x] + T[1][y].
void Gemma4VisionModel::embed_patches(std::span<const float> pixel_values, std::span<const int32_t> positions,
                                      const std::vector<int64_t>& valid_rows, float* hidden) {
  const int64_t rows = int64_t(valid_rows.size());
  const int64_t patch_width = patch_dim();
  const int64_t width = config_.hidden_size;
  std::vector<float> patches(size_t(rows * patch_width));
  row_x_.resize(size_t(rows));
  row_y_.resize(size_t(rows));
  for (int64_t t = 0; t < rows; ++t) {
    const int64_t r = valid_rows[size_t(t)];
    const float* source = pixel_values.data() + r * patch_width;
    for (int64_t i = 0; i < patch_width; ++i) patches[t * patch_width + i] = 2.0f * (source[i] - 0.5f);
    row_x_[t] = positions[2 * r];
    row_y_[t] = positions[2 * r + 1];
  }
  matmul(input_proj_, patches.data(), rows, hidden, *pool_);

  const float* x_table = position_embedding_table_.data();
  const float* y_table = x_table + int64_t(config_.position_embedding_size) * width;
  for (int64_t t = 0; t < rows; ++t) {
    float* row = hidden + t * width;
    const float* x_embedding = x_table + int64_t(row_x_[t]) * width;
    const float* y_embedding = y_table + int64_t(row_y_[t]) * width;
    for (int64_t i = 0; i < width; ++i) row[i] += x_embedding[i] + y_embedding[i];
  }
}

void Gemma4VisionModel::encoder_layer(const Layer& layer, float* hidden, int64_t rows) {
  const int64_t width = config_.hidden_size;
  const int heads = config_.num_attention_heads;
  const int kv_heads = config_.num_key_value_heads;
  const int head_dim = config_.head_dim;
  const int64_t q_width = int64_t(heads) * head_dim;
  const int64_t kv_width = int64_t(kv_heads) * head_dim;
  const int64_t intermediate = config_.intermediate_size;
  const float eps = float(config_.rms_norm_eps);
  normed_.resize(size_t(rows * width));
  scratch_.resize(size_t(rows * width));
  query_.resize(size_t(rows * q_width));
  attention_.resize(size_t(rows * q_width));
  key_.resize(size_t(rows * kv_width));
  value_.resize(size_t(rows * kv_width));
  gate_.resize(size_t(rows * intermediate));
  up_.resize(size_t(rows * intermediate));

  // Attention: q/k RMSNorm with weights, v without, then the 2-D RoPE on q and k.
  std::copy_n(hidden, rows * width, normed_.data());
  rms_norm_rows(normed_.data(), rows, width, layer.input_layernorm.data(), eps);
  apply(layer.q_proj, normed_.data(), rows, query_.data());
  apply(layer.k_proj, normed_.data(), rows, key_.data());
  apply(layer.v_proj, normed_.data(), rows, value_.data());
  rms_norm_rows(query_.data(), rows * heads, head_dim, layer.q_norm.data(), eps);
  rms_norm_rows(key_.data(), rows * kv_heads, head_dim, layer.k_norm.data(), eps);
  rms_norm_rows(value_.data(), rows * kv_heads, head_dim, nullptr, eps);
  const int half = head_dim / 2;
  for (int64_t t = 0; t < rows; ++t) {
    for (int h = 0; h < heads; ++h) {
      float* q = query_.data() + t * q_width + int64_t(h) * head_dim;
      rope_.apply(q, 1, row_x_[t]);
      rope_.apply(q + half, 1, row_y_[t]);
    }
    for (int h = 0; h < kv_heads; ++h) {
      float* k = key_.data() + t * kv_width + int64_t(h) * head_dim;
      rope_.apply(k, 1, row_x_[t]);
      rope_.apply(k + half, 1, row_y_[t]);
    }
  }
  attend(rows);
  apply(layer.o_proj, attention_.data(), rows, scratch_.data());
  rms_norm_rows(scratch_.data(), rows, width, layer.post_attention_layernorm.data(), eps);
  add_scaled(hidden, scratch_.data(), 1.0f, rows * width);

  // MLP: down(gelu_tanh(gate x) * up x).
  std::copy_n(hidden, rows * width, normed_.data());
  rms_norm_rows(normed_.data(), rows, width, layer.pre_feedforward_layernorm.data(), eps);
  apply(layer.gate_proj, normed_.data(), rows, gate_.data());
  apply(layer.up_proj, normed_.data(), rows, up_.data());
  gelu_tanh_mul(gate_.data(), up_.data(), rows * intermediate);
  apply(layer.down_proj, gate_.data(), rows, scratch_.data());
  rms_norm_rows(scratch_.data(), rows, width, layer.post_feedforward_layernorm.data(), eps);
  add_scaled(hidden, scratch_.data(), 1.0f, rows * width);
}

// softmax(q k^T) v per head over every valid patch (bidirectional, scale 1 after the q/k norms).
void Gemma4VisionModel::attend(int64_t rows) {
  // Scale 1: the q and k norms take the place of 1/sqrt(head_dim).
  bidirectional_attention(query_.data(), key_.data(), value_.data(), rows, config_.num_attention_heads,
                          config_.num_key_value_heads, config_.head_dim, 1.0f, attention_.data(), *pool_);
}

// Patch (x, y) goes to cell floor(x / k) + floor(y / k) * ((max_x + 1) / k), where max_x is the
// largest column (padding counted as column 0) and k = pooling_kernel_size. A cell is the mean of
// its k^2 patches, divided by k^2 even where fewer are valid, then scaled by sqrt(hidden).
std::vector<float> Gemma4VisionModel::pool(const float* hidden, std::span<const int32_t> positions,
                                           const std::vector<int64_t>& valid_rows,
                                           int64_t output_length) const {
  const int64_t width = config_.hidden_size;
  const int k = config_.pooling_kernel_size;
  const int64_t max_patches = int64_t(positions.size()) / 2;
  int32_t max_x = 0;
  for (int64_t r = 0; r < max_patches; ++r) max_x = std::max(max_x, positions[2 * r]);
  const int64_t cells_per_row = (int64_t(max_x) + 1) / k;

  std::vector<float> cells(size_t(output_length * width), 0.0f);
  std::vector<char> cell_used(size_t(output_length), 0);
  const float weight = 1.0f / float(k * k);
  for (size_t t = 0; t < valid_rows.size(); ++t) {
    const int64_t cell = row_x_[t] / k + cells_per_row * (row_y_[t] / k);
    if (cell >= output_length) {
      throw std::invalid_argument("vision tower: patch " + std::to_string(valid_rows[t]) + " at (" +
                                  std::to_string(row_x_[t]) + ", " + std::to_string(row_y_[t]) +
                                  ") falls in pooled cell " + std::to_string(cell) + " of " +
                                  std::to_string(output_length));
    }
    cell_used[size_t(cell)] = 1;
    add_scaled(cells.data() + cell * width, hidden + int64_t(t) * width, weight, width);
  }

  // mlx-vlm keeps the first n cells, where n counts the cells with a valid patch. Those are the
  // used cells only when no cell before the last used one is empty, as in the processor's grids.
  const int64_t used = std::count(cell_used.begin(), cell_used.end(), char(1));
  if (std::find(cell_used.begin(), cell_used.begin() + used, char(0)) != cell_used.begin() + used) {
    throw std::invalid_argument("vision tower: the patch positions leave gaps in the pooled grid "
                                "(positions must cover a full grid, as the image processor writes them)");
  }
  cells.resize(size_t(used * width));
  const float root_hidden = std::sqrt(float(width));
  for (float& value : cells) value *= root_hidden;
  if (config_.standardize) {
    for (int64_t c = 0; c < used; ++c) {
      for (int64_t i = 0; i < width; ++i) {
        float& value = cells[c * width + i];
        value = (value - std_bias_[i]) * std_scale_[i];
      }
    }
  }
  return cells;
}

std::vector<float> Gemma4VisionModel::embed(std::span<const float> tower_output) {
  return embed_multimodal(embedding_projection_, tower_output, config_.hidden_size, float(config_.rms_norm_eps),
                          "embed_vision", *pool_);
}

}  // namespace mxgemma
