#include "model/gemma4_text.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/linear.h"
#include "kernels/vector_ops.h"

namespace mxgemma {
namespace {

std::string layer_prefix(int index) { return "layers." + std::to_string(index) + "."; }

// Rounds to the nearest bfloat16 value, ties to even (finite inputs only).
float round_to_bfloat16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return std::bit_cast<float>(bits & 0xffff0000u);
}

}  // namespace

Gemma4TextModel::Gemma4TextModel(const Bundle& bundle, ThreadPool& pool)
    : config_(bundle.text_config()), pool_(&pool) {
  if (config_.model_type != "gemma4_text" && config_.model_type != "gemma3_text") {
    throw std::invalid_argument("text decoder: unsupported model_type \"" + config_.model_type +
                                "\" (supported: gemma4_text, gemma3_text)");
  }
  const bool gemma3 = config_.model_type == "gemma3_text";
  // Gemma 3 (mlx-lm gemma3_text, HF Gemma3Model): q.k scaled by query_pre_attn_scalar^-0.5, no v
  // norm, and the embedding scale sqrt(hidden) rounded to bfloat16. mlx-lm always rounds it so, and
  // HF casts it to the weights' dtype, which is bfloat16 in Google's checkpoints. Gemma 4: scale 1.
  if (gemma3) {
    if (config_.query_pre_attn_scalar <= 0.0) {
      throw std::invalid_argument("gemma3_text: query_pre_attn_scalar must be positive, got " +
                                  std::to_string(config_.query_pre_attn_scalar));
    }
    attention_scale_ = float(1.0 / std::sqrt(config_.query_pre_attn_scalar));
    embedding_scale_ = round_to_bfloat16(std::sqrt(float(config_.hidden_size)));
  } else {
    embedding_scale_ = std::sqrt(float(config_.hidden_size));
  }
  has_v_norm_ = !gemma3;

  auto name = [&](const std::string& local) { return bundle.text_tensor_name(local); };
  auto module = [&](const std::string& local) {
    return bundle.linear(name(local));
  };
  auto vec = [&](const std::string& local) { return bundle.tensor_f32(name(local)); };
  // Gemma 1-3 store an RMSNorm weight w and scale by (1 + w); Gemma 4 stores the factor itself.
  auto norm = [&](const std::string& local) {
    std::vector<float> weight = vec(local);
    if (gemma3) {
      for (float& w : weight) w += 1.0f;
    }
    return weight;
  };

  embed_tokens_ = module("embed_tokens");
  final_norm_ = norm("norm.weight");
  if (config_.hidden_size_per_layer_input > 0) {
    embed_tokens_per_layer_ = module("embed_tokens_per_layer");
    per_layer_model_projection_ = module("per_layer_model_projection");
    per_layer_projection_norm_ = vec("per_layer_projection_norm.weight");
  }

  layers_.resize(config_.num_hidden_layers);
  for (int i = 0; i < config_.num_hidden_layers; ++i) {
    Layer& layer = layers_[i];
    const std::string p = layer_prefix(i);
    layer.full_attention = config_.is_full_attention(i);
    layer.owns_kv = !config_.is_kv_shared(i);
    layer.kv_source = config_.kv_source_layer(i);
    layer.head_dim = config_.layer_head_dim(i);
    layer.kv_heads = config_.layer_kv_heads(i);
    layer.intermediate_size = config_.layer_intermediate_size(i);
    layer.rope = RotaryEmbedding(layer.full_attention ? config_.rope_full : config_.rope_sliding,
                                 layer.head_dim);

    layer.q_proj = module(p + "self_attn.q_proj");
    layer.o_proj = module(p + "self_attn.o_proj");
    layer.q_norm = norm(p + "self_attn.q_norm.weight");
    if (layer.owns_kv) {
      layer.k_proj = module(p + "self_attn.k_proj");
      layer.v_proj = module(p + "self_attn.v_proj");
      layer.k_norm = norm(p + "self_attn.k_norm.weight");
    }
    layer.gate_proj = module(p + "mlp.gate_proj");
    layer.up_proj = module(p + "mlp.up_proj");
    layer.down_proj = module(p + "mlp.down_proj");
    layer.input_layernorm = norm(p + "input_layernorm.weight");
    layer.post_attention_layernorm = norm(p + "post_attention_layernorm.weight");
    layer.pre_feedforward_layernorm = norm(p + "pre_feedforward_layernorm.weight");
    layer.post_feedforward_layernorm = norm(p + "post_feedforward_layernorm.weight");
    if (config_.hidden_size_per_layer_input > 0) {
      layer.per_layer_input_gate = module(p + "per_layer_input_gate");
      layer.per_layer_projection = module(p + "per_layer_projection");
      layer.post_per_layer_input_norm = vec(p + "post_per_layer_input_norm.weight");
    }
    const std::string scalar_name = name(p + "layer_scalar");
    if (bundle.tensors().contains(scalar_name)) layer.layer_scalar = bundle.tensor_f32(scalar_name).at(0);
  }
}

int64_t Gemma4TextModel::weight_bytes_per_token() const {
  int64_t bytes = embed_tokens_.storage_bytes();  // the tied head reads the whole table
  bytes += embed_tokens_.storage_bytes() / std::max<int64_t>(1, embed_tokens_.rows);
  if (embed_tokens_per_layer_.data != nullptr) {
    bytes += embed_tokens_per_layer_.storage_bytes() / embed_tokens_per_layer_.rows;
    bytes += per_layer_model_projection_.storage_bytes();
  }
  for (const Layer& layer : layers_) {
    for (const WeightMatrix* w : {&layer.q_proj, &layer.k_proj, &layer.v_proj, &layer.o_proj, &layer.gate_proj,
                                  &layer.up_proj, &layer.down_proj, &layer.per_layer_input_gate,
                                  &layer.per_layer_projection}) {
      if (w->data != nullptr) bytes += w->storage_bytes();
    }
  }
  return bytes;
}

void Gemma4TextModel::Activations::resize(const TextConfig& config, int64_t new_rows, int64_t max_q_width,
                                          int64_t max_kv_width, int64_t max_intermediate) {
  if (new_rows <= rows) return;
  rows = new_rows;
  const int64_t hidden_width = config.hidden_size;
  const int64_t ple_width = int64_t(config.num_hidden_layers) * config.hidden_size_per_layer_input;
  hidden.resize(rows * hidden_width);
  normed.resize(rows * hidden_width);
  scratch.resize(rows * std::max(hidden_width, ple_width));
  query.resize(rows * max_q_width);
  attention.resize(rows * max_q_width);
  key.resize(rows * max_kv_width);
  value.resize(rows * max_kv_width);
  gate.resize(rows * max_intermediate);
  up.resize(rows * max_intermediate);
  per_layer_inputs.resize(rows * ple_width);
  per_layer_gate.resize(rows * std::max<int64_t>(1, config.hidden_size_per_layer_input));
}

void Gemma4TextModel::observe(const char* name, int layer, const float* data, int64_t rows, int64_t cols) const {
  if (observer_) observer_(name, layer, data, rows, cols);
}

void Gemma4TextModel::check_token_ids(std::span<const int32_t> tokens) const {
  const int64_t vocab = config_.vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      throw std::invalid_argument("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                                  " is outside the vocabulary (size " + std::to_string(vocab) + ")");
    }
  }
}

void Gemma4TextModel::forward(std::span<const int32_t> tokens, KVCache& cache, Logits which,
                              std::vector<float>& logits) {
  forward(tokens, cache, which, logits, std::span<const SoftTokens>{});
}

void Gemma4TextModel::forward(std::span<const int32_t> tokens, KVCache& cache, Logits which,
                              std::vector<float>& logits, const SoftTokens& soft_tokens) {
  forward(tokens, cache, which, logits, std::span<const SoftTokens>(&soft_tokens, 1));
}

void Gemma4TextModel::forward(std::span<const int32_t> tokens, KVCache& cache, Logits which,
                              std::vector<float>& logits, std::span<const SoftTokens> soft_tokens) {
  check_token_ids(tokens);
  // Soft-token row per position, or null: the i-th placeholder takes row i (masked_scatter).
  const int64_t hidden = config_.hidden_size;
  std::vector<const float*> soft_rows(tokens.size(), nullptr);
  for (size_t kind = 0; kind < soft_tokens.size(); ++kind) {
    const SoftTokens& placeholder = soft_tokens[kind];
    if (placeholder.rows.empty() && placeholder.token_id < 0) continue;
    for (size_t other = 0; other < kind; ++other) {
      if (soft_tokens[other].token_id == placeholder.token_id) {
        throw std::invalid_argument("soft tokens: token id " + std::to_string(placeholder.token_id) +
                                    " is given rows twice");
      }
    }
    if (placeholder.rows.size() % size_t(hidden) != 0) {
      throw std::invalid_argument("soft tokens: " + std::to_string(placeholder.rows.size()) +
                                  " values are not rows of the hidden size " + std::to_string(hidden));
    }
    const int64_t count = int64_t(placeholder.rows.size()) / hidden;
    int64_t next = 0;
    for (size_t t = 0; t < tokens.size(); ++t) {
      if (tokens[t] != placeholder.token_id) continue;
      if (next < count) soft_rows[t] = placeholder.rows.data() + next * hidden;
      ++next;
    }
    if (next != count) {
      throw std::invalid_argument("soft tokens: the prompt has " + std::to_string(next) + " tokens of id " +
                                  std::to_string(placeholder.token_id) + " for " + std::to_string(count) +
                                  " soft-token rows");
    }
  }
  cache.ensure_capacity(cache.length() + int64_t(tokens.size()));

  const int64_t vocab = config_.vocab_size;
  const int64_t total = int64_t(tokens.size());
  if (which == Logits::all) logits.resize(size_t(total * vocab));
  if (which == Logits::last) logits.resize(size_t(vocab));
  for (int64_t begin = 0; begin < total; begin += cache.max_chunk()) {
    const int64_t count = std::min(cache.max_chunk(), total - begin);
    const bool last_chunk = begin + count == total;
    Logits chunk_logits = which == Logits::all ? Logits::all : (last_chunk ? which : Logits::none);
    float* out = which == Logits::all ? logits.data() + begin * vocab : logits.data();
    row_caches_.assign(size_t(count), &cache);
    row_positions_.resize(size_t(count));
    for (int64_t t = 0; t < count; ++t) row_positions_[size_t(t)] = cache.length() + t;
    soft_rows_.assign(soft_rows.begin() + begin, soft_rows.begin() + begin + count);
    run_rows(tokens.subspan(size_t(begin), size_t(count)), chunk_logits, out);
    cache.commit(count);
  }
}

void Gemma4TextModel::decode_batch(std::span<const int32_t> tokens, std::span<KVCache* const> caches,
                                   std::vector<float>& logits) {
  if (tokens.size() != caches.size()) {
    throw std::invalid_argument("decode_batch: " + std::to_string(tokens.size()) + " tokens for " +
                                std::to_string(caches.size()) + " caches");
  }
  check_token_ids(tokens);
  for (size_t i = 0; i < caches.size(); ++i) {
    if (std::find(caches.begin(), caches.begin() + i, caches[i]) != caches.begin() + i) {
      throw std::invalid_argument("decode_batch: sequence " + std::to_string(i) + " repeats the cache of an earlier one");
    }
  }
  for (KVCache* cache : caches) cache->ensure_capacity(cache->length() + 1);
  if (tokens.empty()) return;

  row_caches_.assign(caches.begin(), caches.end());
  row_positions_.resize(caches.size());
  for (size_t i = 0; i < caches.size(); ++i) row_positions_[i] = caches[i]->length();
  soft_rows_.assign(caches.size(), nullptr);
  logits.resize(tokens.size() * size_t(config_.vocab_size));
  run_rows(tokens, Logits::all, logits.data());
  for (KVCache* cache : caches) cache->commit(1);
}

void Gemma4TextModel::run_rows(std::span<const int32_t> tokens, Logits which, float* logits_out) {
  const int64_t rows = int64_t(tokens.size());
  const int64_t hidden = config_.hidden_size;
  int64_t max_q = 0, max_kv = 0, max_intermediate = 0;
  for (const Layer& layer : layers_) {
    max_q = std::max<int64_t>(max_q, int64_t(config_.num_attention_heads) * layer.head_dim);
    max_kv = std::max<int64_t>(max_kv, int64_t(layer.kv_heads) * layer.head_dim);
    max_intermediate = std::max<int64_t>(max_intermediate, layer.intermediate_size);
  }
  act_.resize(config_, rows, max_q, max_kv, max_intermediate);

  embed(tokens);
  if (config_.hidden_size_per_layer_input > 0) compute_per_layer_inputs(tokens);

  for (int i = 0; i < config_.num_hidden_layers; ++i) {
    attention_block(i, rows);
    mlp_block(layers_[i], rows);
    if (config_.hidden_size_per_layer_input > 0) per_layer_input_block(i, rows);
    if (layers_[i].layer_scalar != 1.0f) {
      for (int64_t j = 0; j < rows * hidden; ++j) act_.hidden[j] *= layers_[i].layer_scalar;
    }
    observe("layer_output", i, act_.hidden.data(), rows, hidden);
  }
  if (which == Logits::none) return;

  // Only the rows whose logits are wanted go through the final norm and the head.
  const int64_t first_row = which == Logits::last ? rows - 1 : 0;
  const int64_t head_rows = rows - first_row;
  float* final_hidden = act_.hidden.data() + first_row * hidden;
  rms_norm_rows(final_hidden, head_rows, hidden, final_norm_.data(), float(config_.rms_norm_eps));
  observe("final_norm", -1, final_hidden, head_rows, hidden);
  matmul(embed_tokens_, final_hidden, head_rows, logits_out, *pool_);
  if (config_.final_logit_softcapping > 0.0) {
    softcap(logits_out, float(config_.final_logit_softcapping), head_rows * config_.vocab_size);
  }
}

void Gemma4TextModel::embed(std::span<const int32_t> tokens) {
  const int64_t hidden = config_.hidden_size;
  for (size_t t = 0; t < tokens.size(); ++t) {
    float* row = act_.hidden.data() + int64_t(t) * hidden;
    if (soft_rows_[t] != nullptr) {
      std::copy_n(soft_rows_[t], hidden, row);
      continue;
    }
    dequantize_row(embed_tokens_, tokens[t], row);
    for (int64_t i = 0; i < hidden; ++i) row[i] *= embedding_scale_;
  }
  observe("embedding", -1, act_.hidden.data(), int64_t(tokens.size()), hidden);
}

// per_layer_inputs = (RMSNorm(W_plmp x0 / sqrt(hidden)) + E_ple[id] * sqrt(ple_dim)) / sqrt(2),
// viewed as [rows, layers, ple_dim].
void Gemma4TextModel::compute_per_layer_inputs(std::span<const int32_t> tokens) {
  const int64_t rows = int64_t(tokens.size());
  const int64_t ple_dim = config_.hidden_size_per_layer_input;
  const int64_t width = int64_t(config_.num_hidden_layers) * ple_dim;
  float* projected = act_.per_layer_inputs.data();
  matmul(per_layer_model_projection_, act_.hidden.data(), rows, projected, *pool_);
  const float projection_scale = 1.0f / std::sqrt(float(config_.hidden_size));
  for (int64_t j = 0; j < rows * width; ++j) projected[j] *= projection_scale;
  rms_norm_rows(projected, rows * config_.num_hidden_layers, ple_dim, per_layer_projection_norm_.data(),
                float(config_.rms_norm_eps));

  const float token_scale = std::sqrt(float(ple_dim));
  const float combine_scale = 1.0f / std::sqrt(2.0f);
  float* token_part = act_.scratch.data();
  for (int64_t t = 0; t < rows; ++t) {
    // A soft-token position looks up pad_token_id, which is 0 in every Gemma 4 config.
    const int32_t token = soft_rows_[size_t(t)] != nullptr ? 0 : tokens[size_t(t)];
    dequantize_row(embed_tokens_per_layer_, token, token_part);
    float* row = projected + t * width;
    for (int64_t j = 0; j < width; ++j) row[j] = (row[j] + token_part[j] * token_scale) * combine_scale;
  }
  observe("per_layer_inputs", -1, projected, rows, width);
}

void Gemma4TextModel::attention_block(int layer_index, int64_t rows) {
  const Layer& layer = layers_[layer_index];
  const int64_t hidden = config_.hidden_size;
  const int heads = config_.num_attention_heads;
  const int64_t q_width = int64_t(heads) * layer.head_dim;
  const int64_t kv_width = int64_t(layer.kv_heads) * layer.head_dim;
  const float eps = float(config_.rms_norm_eps);

  std::copy_n(act_.hidden.data(), rows * hidden, act_.normed.data());
  rms_norm_rows(act_.normed.data(), rows, hidden, layer.input_layernorm.data(), eps);

  matmul(layer.q_proj, act_.normed.data(), rows, act_.query.data(), *pool_);
  rms_norm_rows(act_.query.data(), rows * heads, layer.head_dim, layer.q_norm.data(), eps);
  for (int64_t t = 0; t < rows; ++t) layer.rope.apply(act_.query.data() + t * q_width, heads, row_positions_[t]);

  row_views_.resize(size_t(rows));
  for (int64_t t = 0; t < rows; ++t) {
    // Rows of one sequence share a cache: look its layer up once.
    const bool same_cache = t > 0 && row_caches_[t] == row_caches_[t - 1];
    row_views_[t] = same_cache ? row_views_[t - 1] : row_caches_[t]->layer(layer.kv_source);
  }
  if (layer.owns_kv) {
    matmul(layer.k_proj, act_.normed.data(), rows, act_.key.data(), *pool_);
    matmul(layer.v_proj, act_.normed.data(), rows, act_.value.data(), *pool_);
    rms_norm_rows(act_.key.data(), rows * layer.kv_heads, layer.head_dim, layer.k_norm.data(), eps);
    if (has_v_norm_) rms_norm_rows(act_.value.data(), rows * layer.kv_heads, layer.head_dim, nullptr, eps);
    for (int64_t t = 0; t < rows; ++t) {
      float* key_row = act_.key.data() + t * kv_width;
      layer.rope.apply(key_row, layer.kv_heads, row_positions_[t]);
      const KVCache::LayerView& kv = row_views_[t];
      const int64_t slot = KVCache::slot(kv, row_positions_[t]);
      std::copy_n(key_row, kv_width, kv.keys->data() + slot * kv_width);
      std::copy_n(act_.value.data() + t * kv_width, kv_width, kv.values->data() + slot * kv_width);
    }
  }

  attend(layer, rows);
  matmul(layer.o_proj, act_.attention.data(), rows, act_.scratch.data(), *pool_);
  rms_norm_rows(act_.scratch.data(), rows, hidden, layer.post_attention_layernorm.data(), eps);
  add_scaled(act_.hidden.data(), act_.scratch.data(), 1.0f, rows * hidden);
}

// softmax(attention_scale_ * q k^T) v per query head over the visible positions. Gemma 4 uses
// scale 1 because q and k are RMS-normed. A sliding layer attends to the last sliding_window
// positions, the current one included.
void Gemma4TextModel::attend(const Layer& layer, int64_t rows) {
  const int heads = config_.num_attention_heads;
  const int head_dim = layer.head_dim;
  const int group = heads / layer.kv_heads;
  const int64_t q_width = int64_t(heads) * head_dim;
  const int64_t kv_width = int64_t(layer.kv_heads) * head_dim;
  const int64_t window = layer.full_attention ? 0 : config_.sliding_window;

  pool_->parallel_for(rows * heads, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / heads;
      const int h = int(item % heads);
      const int64_t position = row_positions_[t];
      const KVCache::LayerView& kv = row_views_[t];
      const int64_t first = window > 0 ? std::max<int64_t>(0, position - window + 1) : 0;
      const int64_t count = position - first + 1;
      const float* q = act_.query.data() + t * q_width + int64_t(h) * head_dim;
      const int64_t kv_offset = int64_t(h / group) * head_dim;
      scores.resize(size_t(count));

      float max_score = -INFINITY;
      for (int64_t j = 0; j < count; ++j) {
        const float* k = kv.keys->data() + KVCache::slot(kv, first + j) * kv_width + kv_offset;
        scores[j] = dot(q, k, head_dim) * attention_scale_;
        max_score = std::max(max_score, scores[j]);
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < count; ++j) {
        scores[j] = std::exp(scores[j] - max_score);
        sum += scores[j];
      }
      float* out = act_.attention.data() + t * q_width + int64_t(h) * head_dim;
      std::fill_n(out, head_dim, 0.0f);
      const float inv_sum = 1.0f / sum;
      for (int64_t j = 0; j < count; ++j) {
        const float* v = kv.values->data() + KVCache::slot(kv, first + j) * kv_width + kv_offset;
        add_scaled(out, v, scores[j] * inv_sum, head_dim);
      }
    }
  });
}

void Gemma4TextModel::mlp_block(const Layer& layer, int64_t rows) {
  const int64_t hidden = config_.hidden_size;
  const float eps = float(config_.rms_norm_eps);
  std::copy_n(act_.hidden.data(), rows * hidden, act_.normed.data());
  rms_norm_rows(act_.normed.data(), rows, hidden, layer.pre_feedforward_layernorm.data(), eps);
  matmul(layer.gate_proj, act_.normed.data(), rows, act_.gate.data(), *pool_);
  matmul(layer.up_proj, act_.normed.data(), rows, act_.up.data(), *pool_);
  gelu_tanh_mul(act_.gate.data(), act_.up.data(), rows * layer.intermediate_size);
  matmul(layer.down_proj, act_.gate.data(), rows, act_.scratch.data(), *pool_);
  rms_norm_rows(act_.scratch.data(), rows, hidden, layer.post_feedforward_layernorm.data(), eps);
  add_scaled(act_.hidden.data(), act_.scratch.data(), 1.0f, rows * hidden);
}

// x += RMSNorm(W_proj (gelu_tanh(W_gate x) * per_layer_input)).
void Gemma4TextModel::per_layer_input_block(int layer_index, int64_t rows) {
  const Layer& layer = layers_[layer_index];
  const int64_t hidden = config_.hidden_size;
  const int64_t ple_dim = config_.hidden_size_per_layer_input;
  const int64_t ple_width = int64_t(config_.num_hidden_layers) * ple_dim;
  matmul(layer.per_layer_input_gate, act_.hidden.data(), rows, act_.per_layer_gate.data(), *pool_);
  for (int64_t t = 0; t < rows; ++t) {
    const float* input = act_.per_layer_inputs.data() + t * ple_width + int64_t(layer_index) * ple_dim;
    gelu_tanh_mul(act_.per_layer_gate.data() + t * ple_dim, input, ple_dim);
  }
  matmul(layer.per_layer_projection, act_.per_layer_gate.data(), rows, act_.scratch.data(), *pool_);
  rms_norm_rows(act_.scratch.data(), rows, hidden, layer.post_per_layer_input_norm.data(),
                float(config_.rms_norm_eps));
  add_scaled(act_.hidden.data(), act_.scratch.data(), 1.0f, rows * hidden);
}

}  // namespace mxgemma
