// Row-wise building blocks of the Gemma decoder: RMSNorm variants and rotary position embedding.
#pragma once

#include <cstdint>
#include <vector>

#include "bundle/config.h"

namespace mxgemma {

// y = x * rsqrt(mean(x^2) + eps) * weight, in place over `rows` rows of `width`, with the weight as
// Gemma 4 stores it (Gemma 1-3 store weight - 1 instead). weight == nullptr gives the scale-free
// norm of Gemma 4's v_norm and embedder pre-norms.
void rms_norm_rows(float* x, int64_t rows, int64_t width, const float* weight, float eps);

// Rotary embedding in the "rotate half" pairing (dim j with j + head_dim/2), as mx.fast.rope with
// traditional=false and HF's apply_rotary_pos_emb.
class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  // "default": inv_freq_i = theta^(-2i/head_dim) for every pair.
  // "proportional" (Gemma 4 full layers): the first partial_rotary_factor*head_dim/2 pairs get
  // theta^(-2i/head_dim), the exponent still over the whole head_dim; the other pairs do not rotate.
  // `factor` divides every frequency (linear position scaling).
  RotaryEmbedding(const RopeParameters& params, int head_dim);

  // Rotates `heads` vectors of head_dim at x[h * head_dim] for one position.
  void apply(float* x, int heads, int64_t position) const;

 private:
  int head_dim_ = 0;
  int rotated_pairs_ = 0;
  std::vector<float> inv_freq_;
};

}  // namespace mxgemma
