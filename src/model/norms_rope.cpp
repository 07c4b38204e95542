#include "model/norms_rope.h"

#include <cmath>
#include <stdexcept>

#include "kernels/vector_ops.h"

namespace mxgemma {

void rms_norm_rows(float* x, int64_t rows, int64_t width, const float* weight, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * width;
    const float inv_rms = 1.0f / std::sqrt(sum_squares(row, width) / float(width) + eps);
    if (weight == nullptr) {
      for (int64_t i = 0; i < width; ++i) row[i] *= inv_rms;
    } else {
      for (int64_t i = 0; i < width; ++i) row[i] = row[i] * inv_rms * weight[i];
    }
  }
}

RotaryEmbedding::RotaryEmbedding(const RopeParameters& params, int head_dim) : head_dim_(head_dim) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    throw std::invalid_argument("rope: head_dim must be even, got " + std::to_string(head_dim));
  }
  const int pairs = head_dim / 2;
  if (params.rope_type == "proportional") {
    rotated_pairs_ = int(params.partial_rotary_factor * head_dim / 2.0);
  } else if (params.rope_type == "default" || params.rope_type == "linear") {
    rotated_pairs_ = pairs;
  } else {
    throw std::invalid_argument("rope: unsupported rope_type \"" + params.rope_type + "\"");
  }
  inv_freq_.assign(pairs, 0.0f);
  for (int i = 0; i < rotated_pairs_; ++i) {
    const double exponent = 2.0 * i / head_dim;
    inv_freq_[i] = float(1.0 / (params.factor * std::pow(params.rope_theta, exponent)));
  }
}

void RotaryEmbedding::apply(float* x, int heads, int64_t position) const {
  const int half = head_dim_ / 2;
  for (int i = 0; i < rotated_pairs_; ++i) {
    // The angle is formed in fp32, as MLX and PyTorch form it.
    const float angle = float(position) * inv_freq_[i];
    const float c = std::cos(angle);
    const float s = std::sin(angle);
    for (int h = 0; h < heads; ++h) {
      float* v = x + int64_t(h) * head_dim_;
      const float x1 = v[i];
      const float x2 = v[i + half];
      v[i] = x1 * c - x2 * s;
      v[i + half] = x2 * c + x1 * s;
    }
  }
}

}  // namespace mxgemma
