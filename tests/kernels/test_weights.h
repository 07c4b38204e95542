// Random weight matrices in every WeightFormat, with the storage they point into, for kernel tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/kernel_table.h"
#include "kernels/weight_matrix.h"
#include "util/half.h"

namespace mxgemma::testing {

struct TestWeights {
  WeightMatrix w;
  std::vector<float> dense_f32;
  std::vector<uint16_t> dense_16;
  std::vector<uint32_t> packed;
  std::vector<uint8_t> e8m0;
  std::vector<uint16_t> scales_16, biases_16;
  std::vector<float> scales_32, biases_32;
  // Per element, |w| or for affine |scale * code| + |bias|: the terms whose rounding a reordered
  // sum may change, so sum_c abs_terms[r, c] * |x[c]| bounds the difference between two orders.
  std::vector<float> abs_terms;
};

inline std::vector<float> random_floats(int64_t n, std::mt19937& rng, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(static_cast<size_t>(n));
  for (float& v : out) v = dist(rng);
  return out;
}

inline void fill_abs_terms_from_rows(TestWeights& t) {
  const WeightMatrix& w = t.w;
  t.abs_terms.resize(size_t(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    scalar_kernel_table().dequantize_segment(w, r, 0, w.cols, t.abs_terms.data() + r * w.cols);
  }
  for (float& v : t.abs_terms) v = std::fabs(v);
}

inline TestWeights make_dense(WeightFormat format, int64_t rows, int64_t cols, std::mt19937& rng) {
  TestWeights t;
  t.w.format = format;
  t.w.rows = rows;
  t.w.cols = cols;
  const std::vector<float> values = random_floats(rows * cols, rng);
  if (format == WeightFormat::f32) {
    t.dense_f32 = values;
    t.w.data = t.dense_f32.data();
    t.w.bits = 32;
  } else {
    for (float v : values) {
      t.dense_16.push_back(format == WeightFormat::f16 ? float_to_fp16(v) : float_to_bf16(v));
    }
    t.w.data = t.dense_16.data();
  }
  fill_abs_terms_from_rows(t);
  return t;
}

// Codes packed LSB-first: element c of a row at bits bits * (c % (32 / bits)) of word c / (32 /
// bits).
inline std::vector<uint32_t> pack_codes(const std::vector<uint32_t>& codes, int bits) {
  const int per_word = 32 / bits;
  std::vector<uint32_t> words(codes.size() / size_t(per_word), 0u);
  for (size_t i = 0; i < codes.size(); ++i) {
    words[i / size_t(per_word)] |= codes[i] << (bits * int(i % size_t(per_word)));
  }
  return words;
}

// E8M0 bytes drawn from [min_byte, max_byte].
inline TestWeights make_mxfp4(int64_t rows, int64_t cols, std::mt19937& rng, int min_byte = 122,
                              int max_byte = 130) {
  TestWeights t;
  t.w.format = WeightFormat::mxfp4;
  t.w.rows = rows;
  t.w.cols = cols;
  t.w.bits = 4;
  t.w.group_size = 32;
  std::uniform_int_distribution<uint32_t> code(0, 15);
  std::vector<uint32_t> codes(size_t(rows * cols));
  for (uint32_t& c : codes) c = code(rng);
  t.packed = pack_codes(codes, 4);
  std::uniform_int_distribution<int> byte(min_byte, max_byte);
  t.e8m0.resize(size_t(rows * cols / 32));
  for (uint8_t& b : t.e8m0) b = uint8_t(byte(rng));
  t.w.data = t.packed.data();
  t.w.e8m0_scales = t.e8m0.data();
  fill_abs_terms_from_rows(t);
  return t;
}

inline TestWeights make_affine(int64_t rows, int64_t cols, int bits, int group_size,
                               ScaleType scale_type, std::mt19937& rng) {
  TestWeights t;
  t.w.format = WeightFormat::affine;
  t.w.rows = rows;
  t.w.cols = cols;
  t.w.bits = bits;
  t.w.group_size = group_size;
  t.w.affine_scale_type = scale_type;
  std::uniform_int_distribution<uint32_t> code(0, (1u << bits) - 1u);
  std::vector<uint32_t> codes(size_t(rows * cols));
  for (uint32_t& c : codes) c = code(rng);
  t.packed = pack_codes(codes, bits);

  // MLX affine groups span [bias, bias + scale * (2^bits - 1)] around the group's values.
  const int64_t groups = rows * cols / group_size;
  std::uniform_real_distribution<float> scale(0.01f, 0.1f);
  for (int64_t g = 0; g < groups; ++g) {
    const float s = scale(rng);
    const float b = -s * float((1 << bits) - 1) * 0.5f;
    const bool f16 = scale_type == ScaleType::f16;
    t.scales_16.push_back(f16 ? float_to_fp16(s) : float_to_bf16(s));
    t.biases_16.push_back(f16 ? float_to_fp16(b) : float_to_bf16(b));
    t.scales_32.push_back(s);
    t.biases_32.push_back(b);
  }
  t.w.data = t.packed.data();
  const bool f32 = scale_type == ScaleType::f32;
  t.w.affine_scales = f32 ? static_cast<const void*>(t.scales_32.data()) : t.scales_16.data();
  t.w.affine_biases = f32 ? static_cast<const void*>(t.biases_32.data()) : t.biases_16.data();

  t.abs_terms.resize(size_t(rows * cols));
  for (int64_t i = 0; i < rows * cols; ++i) {
    const int64_t g = i / group_size;
    const float s = affine_scale_at(t.w.affine_scales, scale_type, g);
    const float b = affine_scale_at(t.w.affine_biases, scale_type, g);
    t.abs_terms[size_t(i)] = std::fabs(s * float(codes[size_t(i)])) + std::fabs(b);
  }
  return t;
}

}  // namespace mxgemma::testing
