// The Gemma 4 text decoder (model_type "gemma4_text") and the Gemma 3 one ("gemma3_text"),
// computed in fp32 from the bundle's weights.
//
// Each token starts as its embedding times sqrt(hidden), and in Gemma 4 per-layer inputs come from
// the per-layer embedding table plus a projection of that embedding. Each layer then runs
// sandwich-normed attention (sliding-window or full, q/k norms, scale-free v norm, scale 1), a
// GeGLU MLP, the per-layer input gate and the layer scalar. The final norm, the tied output head
// and the logit soft-cap give the logits.
//
// Gemma 3 is the same graph less per-layer inputs, KV sharing, the v norm and the layer scalar. Its
// RMSNorm weights w scale by (1 + w), q.k is scaled by query_pre_attn_scalar^-0.5, the embedding
// scale is rounded to bfloat16, and the logits get a soft-cap only when the config sets one.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "kernels/thread_pool.h"
#include "kernels/weight_matrix.h"
#include "model/kv_cache.h"
#include "model/norms_rope.h"

namespace mxgemma {

// Called with each named intermediate ("embedding", "per_layer_inputs", "layer_output", ...):
// rows x cols fp32 values; layer is -1 outside the layers. For debugging against the reference.
using ActivationObserver =
    std::function<void(const std::string& name, int layer, const float* data, int64_t rows, int64_t cols)>;

class Gemma4TextModel {
 public:
  // Reads the weights from `bundle` (no copies of linear weights; norms are widened to fp32).
  Gemma4TextModel(const Bundle& bundle, ThreadPool& pool);

  const TextConfig& config() const { return config_; }
  int32_t vocab_size() const { return config_.vocab_size; }

  // A cache for up to max_context positions; one forward pass adds at most max_chunk positions.
  KVCache make_cache(int64_t max_context, int64_t max_chunk = 512) const {
    return KVCache(config_, max_context, max_chunk);
  }

  enum class Logits { none, last, all };

  // Runs `tokens` at positions cache.length() ... through the decoder and commits their K/V.
  // Longer inputs are split into chunks of cache.max_chunk(). Writes logits for the last token
  // ([vocab]) or for every token ([tokens.size(), vocab]) to `logits`, resized as needed.
  // Throws std::invalid_argument for an id outside the vocabulary and std::length_error when the
  // cache cannot hold the tokens.
  void forward(std::span<const int32_t> tokens, KVCache& cache, Logits which, std::vector<float>& logits);

  // Embeddings that take the place of a prompt's placeholder tokens, such as an image's soft
  // tokens: the i-th occurrence of token_id in the prompt gets row i of `rows` [count, hidden].
  struct SoftTokens {
    int32_t token_id = -1;
    std::span<const float> rows;
  };

  // forward, with each placeholder position embedded as its soft-token row (not scaled by
  // sqrt(hidden)) and given the per-layer token embedding of id 0 (pad), as mlx-vlm 0.7.10 and
  // transformers 5.25 do. The rows may span several chunks. Throws std::invalid_argument when the
  // count of token_id in `tokens` differs from the count of rows.
  void forward(std::span<const int32_t> tokens, KVCache& cache, Logits which, std::vector<float>& logits,
               const SoftTokens& soft_tokens);

  // forward with several kinds of placeholder at once, such as image and audio soft tokens in one
  // prompt. Each entry needs its own token_id.
  void forward(std::span<const int32_t> tokens, KVCache& cache, Logits which, std::vector<float>& logits,
               std::span<const SoftTokens> soft_tokens);

  // Decodes one token for each of several sequences in one pass, so the weights are read once for
  // all of them: tokens[i] goes in at position caches[i]->length() of caches[i]. Writes logits
  // [tokens.size(), vocab]. The caches must be distinct. Throws as forward does.
  void decode_batch(std::span<const int32_t> tokens, std::span<KVCache* const> caches,
                    std::vector<float>& logits);

  void set_observer(ActivationObserver observer) { observer_ = std::move(observer); }

  // Bytes of weights read for one decoded token: every linear once, one row of each embedding
  // table, and the whole output head.
  int64_t weight_bytes_per_token() const;

 private:
  struct Layer {
    bool full_attention = false;
    bool owns_kv = true;
    int kv_source = 0;
    int head_dim = 0;
    int kv_heads = 0;
    int intermediate_size = 0;
    WeightMatrix q_proj, k_proj, v_proj, o_proj;
    WeightMatrix gate_proj, up_proj, down_proj;
    WeightMatrix per_layer_input_gate, per_layer_projection;
    std::vector<float> q_norm, k_norm;
    std::vector<float> input_layernorm, post_attention_layernorm;
    std::vector<float> pre_feedforward_layernorm, post_feedforward_layernorm;
    std::vector<float> post_per_layer_input_norm;
    float layer_scalar = 1.0f;
    RotaryEmbedding rope;
  };

  // Scratch rows for one chunk, reused between calls.
  struct Activations {
    int64_t rows = 0;
    std::vector<float> hidden, normed, scratch;
    std::vector<float> query, key, value, attention;
    std::vector<float> gate, up;
    std::vector<float> per_layer_inputs, per_layer_gate;
    void resize(const TextConfig& config, int64_t rows, int64_t max_q_width, int64_t max_kv_width,
                int64_t max_intermediate);
  };

  // Row t of a pass is the token at position row_positions_[t] of the sequence whose cache is
  // row_caches_[t]: one sequence for a prefill chunk, one row per sequence for decode_batch.
  void run_rows(std::span<const int32_t> tokens, Logits which, float* logits_out);
  void check_token_ids(std::span<const int32_t> tokens) const;
  void embed(std::span<const int32_t> tokens);
  void compute_per_layer_inputs(std::span<const int32_t> tokens);
  void attention_block(int layer_index, int64_t rows);
  void mlp_block(const Layer& layer, int64_t rows);
  void per_layer_input_block(int layer_index, int64_t rows);
  void attend(const Layer& layer, int64_t rows);
  void observe(const char* name, int layer, const float* data, int64_t rows, int64_t cols) const;

  TextConfig config_;
  ThreadPool* pool_;
  WeightMatrix embed_tokens_;
  WeightMatrix embed_tokens_per_layer_;
  WeightMatrix per_layer_model_projection_;
  std::vector<float> per_layer_projection_norm_;
  std::vector<float> final_norm_;
  std::vector<Layer> layers_;
  Activations act_;
  std::vector<KVCache*> row_caches_;
  std::vector<int64_t> row_positions_;
  std::vector<KVCache::LayerView> row_views_;
  // Row t of the current pass takes soft-token row soft_rows_[t] when it is not null.
  std::vector<const float*> soft_rows_;
  ActivationObserver observer_;
  float attention_scale_ = 1.0f;  // multiplies q.k before the softmax
  float embedding_scale_ = 1.0f;  // multiplies each embedding row
  bool has_v_norm_ = true;        // scale-free RMSNorm on v (Gemma 4 only)
};

}  // namespace mxgemma
