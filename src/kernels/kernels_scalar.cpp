// The portable reference kernels: plain loops in the order of the definitions, built on every
// target. The ISA kernels are tested against these.
#include <cmath>
#include <cstring>

#include "kernels/kernel_table.h"
#include "util/half.h"

namespace mxgemma {

float e8m0_to_float(uint8_t byte) {
  // 2^(byte - 127) is the fp32 pattern byte << 23 for bytes 1..254, and 255 gives +inf, as MLX
  // decodes it. Byte 0 would give +0 that way, so it is 2^-127, the subnormal 0x00400000, as in
  // MLX.
  if (byte == 0) return bits_to_float(0x00400000u);
  return bits_to_float(uint32_t(byte) << 23);
}

float affine_scale_at(const void* values, ScaleType type, int64_t index) {
  switch (type) {
    case ScaleType::f16:
      return fp16_to_float(static_cast<const uint16_t*>(values)[index]);
    case ScaleType::bf16:
      return bf16_to_float(static_cast<const uint16_t*>(values)[index]);
    case ScaleType::f32:
      return static_cast<const float*>(values)[index];
  }
  return 0.0f;
}

namespace {

// Code of element `col` in a row of `bits`-wide codes packed LSB-first in little-endian uint32
// words.
uint32_t packed_code(const uint32_t* row_words, int bits, int64_t col) {
  const int per_word = 32 / bits;
  const uint32_t word = row_words[col / per_word];
  return (word >> (bits * (col % per_word))) & ((1u << bits) - 1u);
}

const uint32_t* packed_row(const WeightMatrix& w, int64_t row) {
  return static_cast<const uint32_t*>(w.data) + row * (w.cols * w.bits / 32);
}

float dense_at(const WeightMatrix& w, int64_t row, int64_t col) {
  const int64_t index = row * w.cols + col;
  switch (w.format) {
    case WeightFormat::f16:
      return fp16_to_float(static_cast<const uint16_t*>(w.data)[index]);
    case WeightFormat::bf16:
      return bf16_to_float(static_cast<const uint16_t*>(w.data)[index]);
    default:
      return static_cast<const float*>(w.data)[index];
  }
}

// MLX's quantized_matmul applies the E8M0 scale to each group's sum, so a 255 (+inf) scale gives
// +-inf for the group rather than the NaN that 0 * inf gives per element.
float mxfp4_row_dot(const WeightMatrix& w, int64_t row, const float* x) {
  const uint32_t* words = packed_row(w, row);
  const uint8_t* scales = w.e8m0_scales + row * (w.cols / 32);
  float sum = 0.0f;
  for (int64_t g = 0; g < w.cols / 32; ++g) {
    float group_sum = 0.0f;
    for (int64_t c = g * 32; c < g * 32 + 32; ++c) {
      group_sum += kE2m1Values[packed_code(words, 4, c)] * x[c];
    }
    sum += group_sum * e8m0_to_float(scales[g]);
  }
  return sum;
}

float affine_row_dot(const WeightMatrix& w, int64_t row, const float* x) {
  const uint32_t* words = packed_row(w, row);
  const int64_t groups = w.cols / w.group_size;
  float sum = 0.0f;
  for (int64_t c = 0; c < w.cols; ++c) {
    const int64_t g = row * groups + c / w.group_size;
    const float scale = affine_scale_at(w.affine_scales, w.affine_scale_type, g);
    const float bias = affine_scale_at(w.affine_biases, w.affine_scale_type, g);
    sum += (scale * float(packed_code(words, w.bits, c)) + bias) * x[c];
  }
  return sum;
}

void matvec_rows_scalar(const WeightMatrix& w, const float* x, const float* /*x_group_sums*/,
                        float* y, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    if (w.format == WeightFormat::mxfp4) {
      y[r] = mxfp4_row_dot(w, r, x);
    } else if (w.format == WeightFormat::affine) {
      y[r] = affine_row_dot(w, r, x);
    } else {
      float sum = 0.0f;
      for (int64_t c = 0; c < w.cols; ++c) sum += dense_at(w, r, c) * x[c];
      y[r] = sum;
    }
  }
}

void dequantize_segment_scalar(const WeightMatrix& w, int64_t row, int64_t col_begin, int64_t count,
                               float* out) {
  if (w.format == WeightFormat::mxfp4) {
    const uint32_t* words = packed_row(w, row);
    const uint8_t* scales = w.e8m0_scales + row * (w.cols / 32);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t c = col_begin + i;
      out[i] = kE2m1Values[packed_code(words, 4, c)] * e8m0_to_float(scales[c / 32]);
    }
  } else if (w.format == WeightFormat::affine) {
    const uint32_t* words = packed_row(w, row);
    const int64_t groups = w.cols / w.group_size;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t c = col_begin + i;
      const int64_t g = row * groups + c / w.group_size;
      out[i] = affine_scale_at(w.affine_scales, w.affine_scale_type, g) *
                   float(packed_code(words, w.bits, c)) +
               affine_scale_at(w.affine_biases, w.affine_scale_type, g);
    }
  } else {
    for (int64_t i = 0; i < count; ++i) out[i] = dense_at(w, row, col_begin + i);
  }
}

void gemm_tile_scalar(const float* tile, int64_t depth, const float* x, int64_t ldx,
                      int64_t num_tokens, float* y, int64_t ldy, int64_t valid_rows,
                      bool accumulate) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int64_t r = 0; r < valid_rows; ++r) {
      float sum = 0.0f;
      for (int64_t k = 0; k < depth; ++k) sum += tile[k * kTileRows + r] * x[t * ldx + k];
      y[t * ldy + r] = accumulate ? y[t * ldy + r] + sum : sum;
    }
  }
}

float dot_scalar(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void add_scaled_scalar(float* y, const float* x, float alpha, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

float sum_squares_scalar(const float* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  return sum;
}

void multiply_scalar(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= x[i];
}

// gelu(x, approximate="tanh") = 0.5 x (1 + tanh(u)) with u = sqrt(2/pi) (x + 0.044715 x^3), written
// as x / (1 + e^(-2u)), which is the same function without the cancellation of 1 + tanh(u) for
// negative x; evaluated in double, so the reference is exact to fp32 rounding.
void gelu_tanh_mul_scalar(float* gate, const float* up, int64_t n) {
  const double sqrt_2_over_pi = 0.7978845608028654;
  for (int64_t i = 0; i < n; ++i) {
    const double x = gate[i];
    const double u = sqrt_2_over_pi * (x + 0.044715 * x * x * x);
    gate[i] = float(x / (1.0 + std::exp(-2.0 * u)) * double(up[i]));
  }
}

void softcap_scalar(float* x, float cap, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = float(double(cap) * std::tanh(double(x[i]) / double(cap)));
}

float exp_shifted_sum_scalar(float* x, float shift, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

}  // namespace

const KernelTable& scalar_kernel_table() {
  static const KernelTable table = {
      "scalar",           matvec_rows_scalar, dequantize_segment_scalar,
      gemm_tile_scalar,   dot_scalar,         add_scaled_scalar,
      sum_squares_scalar, multiply_scalar,    gelu_tanh_mul_scalar,
      softcap_scalar,     exp_shifted_sum_scalar,
  };
  return table;
}

}  // namespace mxgemma
