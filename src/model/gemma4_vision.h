// The Gemma 4 vision tower (model_type "gemma4_vision") and the embedder that projects its output
// into the text model, computed in fp32 from the bundle's weights.
//
// Pixel patches p in [0, 1] become input_proj(2 (p - 0.5)) plus a learned embedding of the patch
// column and one of the patch row. Encoder layers are sandwich-normed as in the text decoder, with
// bidirectional attention over the image's patches (q/k norms, scale-free v norm, scale 1, and a
// 2-D RoPE: the first half of each head rotates by the column, the second half by the row) and a
// GeGLU MLP. Every linear may clamp its input and output ("clipped linears"). The pooler averages
// each pooling_kernel_size^2 block of patches into one soft token and scales it by sqrt(hidden).
// The embedder applies a scale-free RMSNorm and a linear map to the text hidden size.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "kernels/thread_pool.h"
#include "kernels/weight_matrix.h"
#include "model/norms_rope.h"
#include "model/tower_layers.h"

namespace mxgemma {

class Gemma4VisionModel {
 public:
  // Reads the vision tower and embed_vision weights. Throws std::invalid_argument when the bundle
  // has no vision_config, and std::runtime_error when its text_config asks for bidirectional
  // attention over image tokens in the decoder, which this runtime does not implement.
  Gemma4VisionModel(const Bundle& bundle, ThreadPool& pool);

  const VisionConfig& config() const { return config_; }
  int text_hidden_size() const { return text_hidden_size_; }
  int patch_dim() const { return 3 * config_.patch_size * config_.patch_size; }

  // Runs the tower on one preprocessed image: pixel_values [max_patches, patch_dim] and positions
  // [max_patches, 2] as (column, row), (-1, -1) on padding rows (the layout of
  // PreprocessedImage). Returns the pooled tokens [num_soft_tokens, hidden], padding cells
  // dropped, where the pooled grid has max_patches / pooling_kernel_size^2 cells. Throws
  // std::invalid_argument for sizes that do not match, positions outside the position table,
  // or valid patches that do not fill the first cells of the pooled grid.
  std::vector<float> encode_patches(std::span<const float> pixel_values,
                                    std::span<const int32_t> positions);

  // Projects tower output [rows, hidden] into the text model: [rows, text_hidden_size].
  std::vector<float> embed(std::span<const float> tower_output);

  // encode_patches then embed: the soft tokens of one image, [num_soft_tokens, text_hidden_size].
  std::vector<float> encode_image(std::span<const float> pixel_values,
                                  std::span<const int32_t> positions) {
    return embed(encode_patches(pixel_values, positions));
  }

 private:
  struct Layer {
    ClippedLinear q_proj, k_proj, v_proj, o_proj;
    ClippedLinear gate_proj, up_proj, down_proj;
    std::vector<float> q_norm, k_norm;
    std::vector<float> input_layernorm, post_attention_layernorm;
    std::vector<float> pre_feedforward_layernorm, post_feedforward_layernorm;
  };

  void apply(const ClippedLinear& linear, const float* x, int64_t rows, float* y) {
    apply_clipped_linear(linear, x, rows, y, clipped_, *pool_);
  }
  void embed_patches(std::span<const float> pixel_values, std::span<const int32_t> positions,
                     const std::vector<int64_t>& valid_rows, float* hidden);
  void encoder_layer(const Layer& layer, float* hidden, int64_t rows);
  void attend(int64_t rows);
  std::vector<float> pool(const float* hidden, std::span<const int32_t> positions,
                          const std::vector<int64_t>& valid_rows, int64_t output_length) const;

  VisionConfig config_;
  ThreadPool* pool_;
  int text_hidden_size_ = 0;
  WeightMatrix input_proj_;
  std::vector<float> position_embedding_table_;  // [2, position_embedding_size, hidden]
  std::vector<Layer> layers_;
  std::vector<float> std_bias_, std_scale_;  // only when config_.standardize
  WeightMatrix embedding_projection_;
  RotaryEmbedding rope_;  // over one spatial half of a head

  // Scratch for one image, reused between calls.
  std::vector<float> normed_, scratch_, clipped_;
  std::vector<float> query_, key_, value_, attention_, gate_, up_;
  std::vector<int32_t> row_x_, row_y_;
};

}  // namespace mxgemma
