// AVX2 + FMA + F16C kernels. This file alone is compiled with those target flags (see
// CMakeLists.txt), and it only runs after a CPU check (linear.cpp).
#include "kernels/kernel_table.h"

#if defined(__x86_64__)

#include <cmath>
#include <immintrin.h>

namespace mxgemma {
namespace {

// A growable per-thread buffer. It is local to this file on purpose: a std::vector instantiated
// here would be compiled with AVX2 flags, and the linker could pick that copy for code that runs on
// CPUs without AVX2.
class Scratch {
 public:
  ~Scratch() { delete[] data_; }
  float* get(int64_t size) {
    if (size > size_) {
      delete[] data_;
      data_ = new float[size_t(size)];
      size_ = size;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  int64_t size_ = 0;
};

float reduce_add(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Dense element loaders: 8 elements to fp32, and one element for the scalar tail.
struct LoadF32 {
  using Element = float;
  static __m256 full(const float* p) { return _mm256_loadu_ps(p); }
  static float one(const float* p) { return *p; }
};
struct LoadF16 {
  using Element = uint16_t;
  static __m256 full(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float one(const uint16_t* p) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(*p))); }
};
struct LoadBf16 {
  using Element = uint16_t;
  static __m256 full(const uint16_t* p) {
    const __m256i wide =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float one(const uint16_t* p) {
    return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(int(uint32_t(*p) << 16))));
  }
};

// kRows rows at once share each x load, and two accumulators per row hide the FMA latency.
template <class Load, int kRows>
void dense_rows(const typename Load::Element* w, int64_t cols, const float* x, float* y) {
  __m256 acc0[kRows], acc1[kRows];
  for (int i = 0; i < kRows; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + c);
    const __m256 x1 = _mm256_loadu_ps(x + c + 8);
    for (int i = 0; i < kRows; ++i) {
      acc0[i] = _mm256_fmadd_ps(Load::full(w + i * cols + c), x0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(Load::full(w + i * cols + c + 8), x1, acc1[i]);
    }
  }
  for (; c + 8 <= cols; c += 8) {
    const __m256 xv = _mm256_loadu_ps(x + c);
    for (int i = 0; i < kRows; ++i)
      acc0[i] = _mm256_fmadd_ps(Load::full(w + i * cols + c), xv, acc0[i]);
  }
  for (int i = 0; i < kRows; ++i) {
    float sum = reduce_add(_mm256_add_ps(acc0[i], acc1[i]));
    for (int64_t t = c; t < cols; ++t) sum += Load::one(w + i * cols + t) * x[t];
    y[i] = sum;
  }
}

template <class Load>
void dense_matvec(const WeightMatrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  const auto* base = static_cast<const typename Load::Element*>(w.data);
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) dense_rows<Load, 4>(base + r * w.cols, w.cols, x, y + r);
  for (; r < r1; ++r) dense_rows<Load, 1>(base + r * w.cols, w.cols, x, y + r);
}

// Reorders each block of 32 inputs as its 16 even then its 16 odd elements, matching the order in
// which nibble codes come out of a byte: low nibble = even element, high nibble = odd element.
void deinterleave_pairs(const float* x, int64_t cols, float* out) {
  for (int64_t b = 0; b < cols; b += 32) {
    for (int j = 0; j < 16; ++j) {
      out[b + j] = x[b + 2 * j];
      out[b + 16 + j] = x[b + 2 * j + 1];
    }
  }
}

// Multiplies 16 int8 weights (2 x 8) by 16 floats of x, accumulating into acc.
__m256 fma_int8x16(__m128i values, const float* x, __m256 acc) {
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(values)), _mm256_loadu_ps(x), acc);
  const __m128i high = _mm_srli_si128(values, 8);
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(high)), _mm256_loadu_ps(x + 8),
                         acc);
}

// vpshufb looks up E2M1 codes in a table of twice their values, which are all integers
// (0, 1, 2, 3, 4, 6, 8, 12 and negatives), so the group's scale is halved to compensate.
void mxfp4_matvec(const WeightMatrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  thread_local Scratch x_pairs_buffer;
  float* x_pairs = x_pairs_buffer.get(w.cols);
  deinterleave_pairs(x, w.cols, x_pairs);
  const int64_t groups = w.cols / 32;
  const __m128i doubled_lut =
      _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
  const __m128i low_nibble = _mm_set1_epi8(0x0f);

  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* codes = static_cast<const uint8_t*>(w.data) + r * (w.cols / 2);
    const uint8_t* scales = w.e8m0_scales + r * groups;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t g = 0; g < groups; ++g) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + g * 16));
      const __m128i even = _mm_shuffle_epi8(doubled_lut, _mm_and_si128(bytes, low_nibble));
      const __m128i odd =
          _mm_shuffle_epi8(doubled_lut, _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibble));
      __m256 group_sum = fma_int8x16(even, x_pairs + g * 32, _mm256_setzero_ps());
      group_sum = fma_int8x16(odd, x_pairs + g * 32 + 16, group_sum);
      const float half_scale = 0.5f * e8m0_to_float(scales[g]);
      acc[g & 1] = _mm256_fmadd_ps(group_sum, _mm256_set1_ps(half_scale), acc[g & 1]);
    }
    y[r] = reduce_add(_mm256_add_ps(acc[0], acc[1]));
  }
}

// Multiplies 8 unsigned byte codes by 8 floats of x, accumulating into acc.
__m256 fma_uint8x8(__m128i values, const float* x, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(values)), _mm256_loadu_ps(x), acc);
}

void affine_matvec(const WeightMatrix& w, const float* x, const float* x_group_sums, float* y,
                   int64_t r0, int64_t r1) {
  thread_local Scratch x_pairs_buffer;
  const bool four_bit = w.bits == 4;
  float* x_pairs = nullptr;
  if (four_bit) {
    x_pairs = x_pairs_buffer.get(w.cols);
    deinterleave_pairs(x, w.cols, x_pairs);
  }
  const int64_t groups = w.cols / w.group_size;
  const int64_t row_bytes = w.cols * w.bits / 8;
  const __m128i low_nibble = _mm_set1_epi8(0x0f);

  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* codes = static_cast<const uint8_t*>(w.data) + r * row_bytes;
    float sum = 0.0f;
    for (int64_t g = 0; g < groups; ++g) {
      __m256 acc = _mm256_setzero_ps();
      for (int64_t c = g * w.group_size; c < (g + 1) * w.group_size; c += 32) {
        if (four_bit) {
          const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + c / 2));
          const __m128i even = _mm_and_si128(bytes, low_nibble);
          const __m128i odd = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibble);
          acc = fma_uint8x8(even, x_pairs + c, acc);
          acc = fma_uint8x8(_mm_srli_si128(even, 8), x_pairs + c + 8, acc);
          acc = fma_uint8x8(odd, x_pairs + c + 16, acc);
          acc = fma_uint8x8(_mm_srli_si128(odd, 8), x_pairs + c + 24, acc);
        } else {
          for (int part = 0; part < 32; part += 8) {
            const __m128i bytes =
                _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + c + part));
            acc = fma_uint8x8(bytes, x + c + part, acc);
          }
        }
      }
      const int64_t index = r * groups + g;
      sum += affine_scale_at(w.affine_scales, w.affine_scale_type, index) * reduce_add(acc) +
             affine_scale_at(w.affine_biases, w.affine_scale_type, index) * x_group_sums[g];
    }
    y[r] = sum;
  }
}

void matvec_rows_avx2(const WeightMatrix& w, const float* x, const float* x_group_sums, float* y,
                      int64_t r0, int64_t r1) {
  switch (w.format) {
    case WeightFormat::f32:
      return dense_matvec<LoadF32>(w, x, y, r0, r1);
    case WeightFormat::f16:
      return dense_matvec<LoadF16>(w, x, y, r0, r1);
    case WeightFormat::bf16:
      return dense_matvec<LoadBf16>(w, x, y, r0, r1);
    case WeightFormat::mxfp4:
      return mxfp4_matvec(w, x, y, r0, r1);
    case WeightFormat::affine:
      return affine_matvec(w, x, x_group_sums, y, r0, r1);
  }
}

// Codes of the 8 elements in one packed word, in element order.
__m256i nibbles_in_order(uint32_t word) {
  const __m256i shift = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(int(word)), shift),
                          _mm256_set1_epi32(0xf));
}

template <class Load>
void dense_segment(const WeightMatrix& w, int64_t row, int64_t c0, int64_t count, float* out) {
  const auto* p = static_cast<const typename Load::Element*>(w.data) + row * w.cols + c0;
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(out + i, Load::full(p + i));
  for (; i < count; ++i) out[i] = Load::one(p + i);
}

void dequantize_segment_avx2(const WeightMatrix& w, int64_t row, int64_t c0, int64_t count,
                             float* out) {
  switch (w.format) {
    case WeightFormat::f32:
      return dense_segment<LoadF32>(w, row, c0, count, out);
    case WeightFormat::f16:
      return dense_segment<LoadF16>(w, row, c0, count, out);
    case WeightFormat::bf16:
      return dense_segment<LoadBf16>(w, row, c0, count, out);
    default:
      break;
  }
  const uint32_t* words = static_cast<const uint32_t*>(w.data) + row * (w.cols * w.bits / 32);
  if (w.format == WeightFormat::mxfp4) {
    // vpermps indexes 8 entries, so it looks up the magnitude (code bits 0-2) and code bit 3
    // becomes the fp32 sign bit.
    const __m256 magnitudes = _mm256_loadu_ps(kE2m1Values);
    const uint8_t* scales = w.e8m0_scales + row * (w.cols / 32);
    for (int64_t i = 0; i < count; i += 8) {
      const int64_t c = c0 + i;
      const __m256i code = nibbles_in_order(words[c / 8]);
      const __m256i sign =
          _mm256_and_si256(_mm256_slli_epi32(code, 28), _mm256_set1_epi32(INT32_MIN));
      const __m256 value =
          _mm256_or_ps(_mm256_permutevar8x32_ps(magnitudes, code), _mm256_castsi256_ps(sign));
      _mm256_storeu_ps(out + i,
                       _mm256_mul_ps(value, _mm256_set1_ps(e8m0_to_float(scales[c / 32]))));
    }
    return;
  }
  const int64_t groups = w.cols / w.group_size;
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(words);
  for (int64_t i = 0; i < count; i += 8) {
    const int64_t c = c0 + i;
    const int64_t index = row * groups + c / w.group_size;
    const __m256 scale =
        _mm256_set1_ps(affine_scale_at(w.affine_scales, w.affine_scale_type, index));
    const __m256 bias =
        _mm256_set1_ps(affine_scale_at(w.affine_biases, w.affine_scale_type, index));
    const __m256i code =
        w.bits == 4
            ? nibbles_in_order(words[c / 8])
            : _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes + c)));
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(code), bias));
  }
}

// kTokens tokens x 32 rows in 4 * kTokens accumulators. Partial row blocks go through a buffer.
template <int kTokens>
void gemm_block(const float* tile, int64_t depth, const float* x, int64_t ldx, float* y,
                int64_t ldy, int64_t valid_rows, bool accumulate) {
  __m256 acc[kTokens][4];
  for (int t = 0; t < kTokens; ++t) {
    for (int j = 0; j < 4; ++j) acc[t][j] = _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < depth; ++k) {
    const float* tile_row = tile + k * kTileRows;
    const __m256 w0 = _mm256_loadu_ps(tile_row);
    const __m256 w1 = _mm256_loadu_ps(tile_row + 8);
    const __m256 w2 = _mm256_loadu_ps(tile_row + 16);
    const __m256 w3 = _mm256_loadu_ps(tile_row + 24);
    for (int t = 0; t < kTokens; ++t) {
      const __m256 xb = _mm256_broadcast_ss(x + t * ldx + k);
      acc[t][0] = _mm256_fmadd_ps(w0, xb, acc[t][0]);
      acc[t][1] = _mm256_fmadd_ps(w1, xb, acc[t][1]);
      acc[t][2] = _mm256_fmadd_ps(w2, xb, acc[t][2]);
      acc[t][3] = _mm256_fmadd_ps(w3, xb, acc[t][3]);
    }
  }
  for (int t = 0; t < kTokens; ++t) {
    float* out = y + t * ldy;
    if (valid_rows == kTileRows) {
      for (int j = 0; j < 4; ++j) {
        const __m256 prior = accumulate ? _mm256_loadu_ps(out + 8 * j) : _mm256_setzero_ps();
        _mm256_storeu_ps(out + 8 * j, _mm256_add_ps(acc[t][j], prior));
      }
    } else {
      alignas(32) float buffer[kTileRows];
      for (int j = 0; j < 4; ++j) _mm256_store_ps(buffer + 8 * j, acc[t][j]);
      for (int64_t r = 0; r < valid_rows; ++r) out[r] = accumulate ? out[r] + buffer[r] : buffer[r];
    }
  }
}

void gemm_tile_avx2(const float* tile, int64_t depth, const float* x, int64_t ldx,
                    int64_t num_tokens, float* y, int64_t ldy, int64_t valid_rows,
                    bool accumulate) {
  static_assert(kTileRows == 32, "the AVX2 micro-kernel holds a tile row in four registers");
  constexpr int kBlock = 3;
  int64_t t = 0;
  for (; t + kBlock <= num_tokens; t += kBlock) {
    gemm_block<kBlock>(tile, depth, x + t * ldx, ldx, y + t * ldy, ldy, valid_rows, accumulate);
  }
  const float* xt = x + t * ldx;
  float* yt = y + t * ldy;
  switch (num_tokens - t) {
    case 2:
      return gemm_block<2>(tile, depth, xt, ldx, yt, ldy, valid_rows, accumulate);
    case 1:
      return gemm_block<1>(tile, depth, xt, ldx, yt, ldy, valid_rows, accumulate);
    default:
      return;
  }
}

float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float sum = reduce_add(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float sum_squares_avx2(const float* x, int64_t n) { return dot_avx2(x, x, n); }

void add_scaled_avx2(float* y, const float* x, float alpha, int64_t n) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

void multiply_avx2(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
  }
  for (; i < n; ++i) y[i] *= x[i];
}

// e^v for v clamped to [-87, 88], about 1 ulp: e^v = 2^n e^r with n = round(v / ln 2),
// |r| <= ln(2) / 2, and the Cephes expf polynomial for e^r. 2^n is built in the exponent field.
__m256 exp_avx2(__m256 v) {
  v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i exponent =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

// gelu_tanh(v) = v * sigmoid(2u) with u = sqrt(2/pi) (v + 0.044715 v^3), because
// 0.5 (1 + tanh(u)) = 1 / (1 + e^(-2u)), and this form keeps full relative accuracy for negative v.
__m256 gelu_tanh_avx2(__m256 v) {
  const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
  const __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                                 _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), v3, v));
  const __m256 e = exp_avx2(_mm256_mul_ps(_mm256_set1_ps(-2.0f), u));
  return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// tanh by its odd Taylor series to v^11 for |v| < 0.3 (truncation below 1e-9 relative), else
// 1 - 2 / (e^(2|v|) + 1) with the sign restored.
__m256 tanh_avx2(__m256 v) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256 a = _mm256_andnot_ps(sign_bit, v);
  const __m256 v2 = _mm256_mul_ps(v, v);
  __m256 p = _mm256_set1_ps(-1382.0f / 155925.0f);
  p = _mm256_fmadd_ps(p, v2, _mm256_set1_ps(62.0f / 2835.0f));
  p = _mm256_fmadd_ps(p, v2, _mm256_set1_ps(-17.0f / 315.0f));
  p = _mm256_fmadd_ps(p, v2, _mm256_set1_ps(2.0f / 15.0f));
  p = _mm256_fmadd_ps(p, v2, _mm256_set1_ps(-1.0f / 3.0f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, v2), v, v);
  const __m256 e = exp_avx2(_mm256_add_ps(a, a));
  const __m256 large =
      _mm256_sub_ps(_mm256_set1_ps(1.0f),
                    _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
  const __m256 signed_large = _mm256_or_ps(large, _mm256_and_ps(sign_bit, v));
  const __m256 is_small = _mm256_cmp_ps(a, _mm256_set1_ps(0.3f), _CMP_LT_OQ);
  return _mm256_blendv_ps(signed_large, small, is_small);
}

// The tails are padded into an 8-lane buffer so they take the same vector path as the body.
void gelu_tanh_mul_avx2(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gelu = gelu_tanh_avx2(_mm256_loadu_ps(gate + i));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(gelu, _mm256_loadu_ps(up + i)));
  }
  if (i == n) return;
  alignas(32) float buffer[8] = {};
  for (int64_t j = i; j < n; ++j) buffer[j - i] = gate[j];
  _mm256_store_ps(buffer, gelu_tanh_avx2(_mm256_load_ps(buffer)));
  for (int64_t j = i; j < n; ++j) gate[j] = buffer[j - i] * up[j];
}

void softcap_avx2(float* x, float cap, int64_t n) {
  const __m256 c = _mm256_set1_ps(cap);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(x + i, _mm256_mul_ps(c, tanh_avx2(_mm256_div_ps(_mm256_loadu_ps(x + i), c))));
  }
  if (i == n) return;
  alignas(32) float buffer[8] = {};
  for (int64_t j = i; j < n; ++j) buffer[j - i] = x[j];
  _mm256_store_ps(buffer, _mm256_mul_ps(c, tanh_avx2(_mm256_div_ps(_mm256_load_ps(buffer), c))));
  for (int64_t j = i; j < n; ++j) x[j] = buffer[j - i];
}

float exp_shifted_sum_avx2(float* x, float shift, int64_t n) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0.0f;
  for (float lane : lanes) total += lane;
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    total += x[i];
  }
  return total;
}

}  // namespace

const KernelTable* avx2_kernel_table() {
  static const KernelTable table = {
      "avx2",          matvec_rows_avx2, dequantize_segment_avx2, gemm_tile_avx2,     dot_avx2,
      add_scaled_avx2, sum_squares_avx2, multiply_avx2,           gelu_tanh_mul_avx2, softcap_avx2,
      exp_shifted_sum_avx2,
  };
  return &table;
}

}  // namespace mxgemma

#else

namespace mxgemma {
const KernelTable* avx2_kernel_table() { return nullptr; }
}  // namespace mxgemma

#endif
