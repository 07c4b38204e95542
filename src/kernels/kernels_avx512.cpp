// AVX-512 (F, BW, VL) kernels. This file alone is compiled with those target flags (see
// CMakeLists.txt), and it only runs after a CPU check (linear.cpp).
#include "kernels/kernel_table.h"

#if defined(__x86_64__)

#include <immintrin.h>

namespace mxgemma {
namespace {

// A growable per-thread buffer. It is local to this file on purpose: a std::vector instantiated
// here would be compiled with AVX-512 flags, and the linker could pick that copy for code that runs
// on CPUs without AVX-512.
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

__mmask16 first_lanes(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }

// Dense element loaders: 16 elements to fp32, with a masked variant for the tail.
struct LoadF32 {
  using Element = float;
  static __m512 full(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 part(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct LoadF16 {
  using Element = uint16_t;
  static __m512 full(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 part(const uint16_t* p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  }
};
struct LoadBf16 {
  using Element = uint16_t;
  static __m512 widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static __m512 full(const uint16_t* p) {
    return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 part(const uint16_t* p, __mmask16 m) {
    return widen(_mm256_maskz_loadu_epi16(m, p));
  }
};

// kRows rows at once share each x load, and two accumulators per row hide the FMA latency.
template <class Load, int kRows>
void dense_rows(const typename Load::Element* w, int64_t cols, const float* x, float* y) {
  __m512 acc0[kRows], acc1[kRows];
  for (int i = 0; i < kRows; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= cols; c += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + c);
    const __m512 x1 = _mm512_loadu_ps(x + c + 16);
    for (int i = 0; i < kRows; ++i) {
      acc0[i] = _mm512_fmadd_ps(Load::full(w + i * cols + c), x0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(Load::full(w + i * cols + c + 16), x1, acc1[i]);
    }
  }
  for (; c < cols; c += 16) {
    const __mmask16 m = first_lanes(cols - c);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + c);
    for (int i = 0; i < kRows; ++i)
      acc0[i] = _mm512_fmadd_ps(Load::part(w + i * cols + c, m), xv, acc0[i]);
  }
  for (int i = 0; i < kRows; ++i) y[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[i], acc1[i]));
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

// 16 E8M0 bytes to fp32 scales (see e8m0_to_float for bytes 0 and 255).
__m512 e8m0_to_float16(__m128i bytes) {
  const __m512i widened = _mm512_cvtepu8_epi32(bytes);
  const __mmask16 zero = _mm512_cmpeq_epi32_mask(widened, _mm512_setzero_si512());
  const __m512i bits =
      _mm512_mask_blend_epi32(zero, _mm512_slli_epi32(widened, 23), _mm512_set1_epi32(0x00400000));
  return _mm512_castsi512_ps(bits);
}

void decode_e8m0_row(const uint8_t* scales, int64_t groups, float* out) {
  for (int64_t g = 0; g < groups; g += 16) {
    const __mmask16 m = first_lanes(groups - g);
    _mm512_mask_storeu_ps(out + g, m, e8m0_to_float16(_mm_maskz_loadu_epi8(m, scales + g)));
  }
}

// Block of 128 inputs (4 groups) read as 16 uint32 words, one per lane: step j takes code j of
// every word (bits 4j..4j+3), so lane i holds element 8i + j. vpermps uses only the low 4 bits of
// each lane as the LUT index, so a shift is all the unpacking a step needs. x is reordered to match
// once per call.
void reorder_x_for_word_lanes(const float* x, int64_t cols, float* out) {
  for (int64_t b = 0; b + 128 <= cols; b += 128) {
    for (int j = 0; j < 8; ++j) {
      for (int i = 0; i < 16; ++i) out[b + j * 16 + i] = x[b + 8 * i + j];
    }
  }
}

template <int kShift>
__m512 word_lane_step(__m512i words, __m512 lut, const float* x_lanes, __m512 sum) {
  const __m512 value = _mm512_permutexvar_ps(_mm512_srli_epi32(words, kShift), lut);
  return _mm512_fmadd_ps(value, _mm512_loadu_ps(x_lanes + (kShift / 4) * 16), sum);
}

// kRows rows of an mxfp4 matvec. The 8 vectors of x for a block are loaded once and shared by the
// rows, which saves a third of the instructions of a row-at-a-time loop.
template <int kRows>
void mxfp4_rows(const WeightMatrix& w, const float* x_lanes, const float* x_pairs, float* row_scales,
                int64_t r, float* y) {
  const int64_t groups = w.cols / 32;
  const int64_t blocks = w.cols / 128;
  const int64_t scale_stride = groups + 16;
  const __m512 lut = _mm512_loadu_ps(kE2m1Values);
  // Lane i of a block belongs to group i / 4.
  const __m512i group_of_lane = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);

  const uint32_t* words[kRows];
  __m512 acc[kRows][2];
  for (int i = 0; i < kRows; ++i) {
    words[i] = static_cast<const uint32_t*>(w.data) + (r + i) * (w.cols / 8);
    decode_e8m0_row(w.e8m0_scales + (r + i) * groups, groups, row_scales + i * scale_stride);
    acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  }

  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x_lanes + b * 128;
    const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
    const __m512 x2 = _mm512_loadu_ps(xb + 32), x3 = _mm512_loadu_ps(xb + 48);
    const __m512 x4 = _mm512_loadu_ps(xb + 64), x5 = _mm512_loadu_ps(xb + 80);
    const __m512 x6 = _mm512_loadu_ps(xb + 96), x7 = _mm512_loadu_ps(xb + 112);
    for (int i = 0; i < kRows; ++i) {
      const __m512i block = _mm512_loadu_si512(words[i] + b * 16);
      __m512 even = _mm512_mul_ps(_mm512_permutexvar_ps(block, lut), x0);
      __m512 odd = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(block, 4), lut), x1);
      even = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(block, 8), lut), x2, even);
      odd = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(block, 12), lut), x3, odd);
      even = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(block, 16), lut), x4, even);
      odd = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(block, 20), lut), x5, odd);
      even = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(block, 24), lut), x6, even);
      odd = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(block, 28), lut), x7, odd);
      const __m512 scales = _mm512_permutexvar_ps(
          group_of_lane,
          _mm512_castps128_ps512(_mm_loadu_ps(row_scales + i * scale_stride + b * 4)));
      acc[i][b & 1] = _mm512_fmadd_ps(_mm512_add_ps(even, odd), scales, acc[i][b & 1]);
    }
  }

  // Groups past the last whole block take the per-group path, with x as even then odd elements.
  for (int i = 0; i < kRows; ++i) {
    const uint8_t* codes = reinterpret_cast<const uint8_t*>(words[i]);
    for (int64_t g = blocks * 4; g < groups; ++g) {
      const __m512i bytes =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + g * 16)));
      const __m512 even = _mm512_permutexvar_ps(bytes, lut);
      const __m512 odd = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), lut);
      __m512 group_sum = _mm512_mul_ps(even, _mm512_loadu_ps(x_pairs + g * 32));
      group_sum = _mm512_fmadd_ps(odd, _mm512_loadu_ps(x_pairs + g * 32 + 16), group_sum);
      acc[i][g & 1] = _mm512_fmadd_ps(group_sum, _mm512_set1_ps(row_scales[i * scale_stride + g]),
                                      acc[i][g & 1]);
    }
    y[r + i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]));
  }
}

void mxfp4_matvec(const WeightMatrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  constexpr int kRows = 4;
  thread_local Scratch x_lanes_buffer, x_pairs_buffer, row_scales_buffer;
  const int64_t block_cols = w.cols / 128 * 128;
  float* x_lanes = x_lanes_buffer.get(w.cols);
  reorder_x_for_word_lanes(x, w.cols, x_lanes);
  float* x_pairs = x_pairs_buffer.get(w.cols);
  deinterleave_pairs(x + block_cols, w.cols - block_cols, x_pairs + block_cols);
  float* row_scales = row_scales_buffer.get(kRows * (w.cols / 32 + 16));

  int64_t r = r0;
  for (; r + kRows <= r1; r += kRows) mxfp4_rows<kRows>(w, x_lanes, x_pairs, row_scales, r, y);
  for (; r < r1; ++r) mxfp4_rows<1>(w, x_lanes, x_pairs, row_scales, r, y);
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
  const __m512i low_nibble = _mm512_set1_epi32(0xf);

  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* codes = static_cast<const uint8_t*>(w.data) + r * row_bytes;
    float sum = 0.0f;
    for (int64_t g = 0; g < groups; ++g) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t c = g * w.group_size; c < (g + 1) * w.group_size; c += 32) {
        if (four_bit) {
          const __m512i bytes = _mm512_cvtepu8_epi32(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + c / 2)));
          const __m512 even = _mm512_cvtepi32_ps(_mm512_and_si512(bytes, low_nibble));
          const __m512 odd = _mm512_cvtepi32_ps(_mm512_srli_epi32(bytes, 4));
          acc = _mm512_fmadd_ps(even, _mm512_loadu_ps(x_pairs + c), acc);
          acc = _mm512_fmadd_ps(odd, _mm512_loadu_ps(x_pairs + c + 16), acc);
        } else {
          for (int half = 0; half < 32; half += 16) {
            const __m512 code = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + c + half))));
            acc = _mm512_fmadd_ps(code, _mm512_loadu_ps(x + c + half), acc);
          }
        }
      }
      const int64_t index = r * groups + g;
      sum +=
          affine_scale_at(w.affine_scales, w.affine_scale_type, index) * _mm512_reduce_add_ps(acc) +
          affine_scale_at(w.affine_biases, w.affine_scale_type, index) * x_group_sums[g];
    }
    y[r] = sum;
  }
}

void matvec_rows_avx512(const WeightMatrix& w, const float* x, const float* x_group_sums, float* y,
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

// Codes of 16 consecutive elements from two packed words, in element order: lane j takes word j / 8
// shifted right by 4 * (j % 8).
__m512i nibbles_in_order(const uint32_t* words) {
  const __m512i word_index = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i shift = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
  const __m512i pair =
      _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(words)));
  return _mm512_srlv_epi32(_mm512_permutexvar_epi32(word_index, pair), shift);
}

template <class Load>
void dense_segment(const WeightMatrix& w, int64_t row, int64_t c0, int64_t count, float* out) {
  const auto* p = static_cast<const typename Load::Element*>(w.data) + row * w.cols + c0;
  for (int64_t i = 0; i < count; i += 16) {
    const __mmask16 m = first_lanes(count - i);
    _mm512_mask_storeu_ps(out + i, m, Load::part(p + i, m));
  }
}

void dequantize_segment_avx512(const WeightMatrix& w, int64_t row, int64_t c0, int64_t count,
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
    const __m512 lut = _mm512_loadu_ps(kE2m1Values);
    const uint8_t* scales = w.e8m0_scales + row * (w.cols / 32);
    for (int64_t i = 0; i < count; i += 16) {
      const int64_t c = c0 + i;
      const __m512 value = _mm512_permutexvar_ps(nibbles_in_order(words + c / 8), lut);
      _mm512_storeu_ps(out + i,
                       _mm512_mul_ps(value, _mm512_set1_ps(e8m0_to_float(scales[c / 32]))));
    }
    return;
  }
  const int64_t groups = w.cols / w.group_size;
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(words);
  for (int64_t i = 0; i < count; i += 16) {
    const int64_t c = c0 + i;
    const int64_t index = row * groups + c / w.group_size;
    const __m512 scale =
        _mm512_set1_ps(affine_scale_at(w.affine_scales, w.affine_scale_type, index));
    const __m512 bias =
        _mm512_set1_ps(affine_scale_at(w.affine_biases, w.affine_scale_type, index));
    const __m512i code =
        w.bits == 4
            ? _mm512_and_si512(nibbles_in_order(words + c / 8), _mm512_set1_epi32(0xf))
            : _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + c)));
    _mm512_storeu_ps(out + i, _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(code), bias));
  }
}

// kTokens tokens x 32 rows in 2 * kTokens accumulators.
template <int kTokens>
void gemm_block(const float* tile, int64_t depth, const float* x, int64_t ldx, float* y,
                int64_t ldy, __mmask16 mask0, __mmask16 mask1, bool accumulate) {
  __m512 acc[kTokens][2];
  for (int t = 0; t < kTokens; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < depth; ++k) {
    const __m512 w0 = _mm512_loadu_ps(tile + k * kTileRows);
    const __m512 w1 = _mm512_loadu_ps(tile + k * kTileRows + 16);
    for (int t = 0; t < kTokens; ++t) {
      const __m512 xb = _mm512_set1_ps(x[t * ldx + k]);
      acc[t][0] = _mm512_fmadd_ps(w0, xb, acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(w1, xb, acc[t][1]);
    }
  }
  for (int t = 0; t < kTokens; ++t) {
    float* out = y + t * ldy;
    if (accumulate) {
      acc[t][0] = _mm512_add_ps(acc[t][0], _mm512_maskz_loadu_ps(mask0, out));
      acc[t][1] = _mm512_add_ps(acc[t][1], _mm512_maskz_loadu_ps(mask1, out + 16));
    }
    _mm512_mask_storeu_ps(out, mask0, acc[t][0]);
    _mm512_mask_storeu_ps(out + 16, mask1, acc[t][1]);
  }
}

void gemm_tile_avx512(const float* tile, int64_t depth, const float* x, int64_t ldx,
                      int64_t num_tokens, float* y, int64_t ldy, int64_t valid_rows,
                      bool accumulate) {
  static_assert(kTileRows == 32, "the AVX-512 micro-kernel holds a tile row in two registers");
  const __mmask16 mask0 = first_lanes(valid_rows);
  const __mmask16 mask1 = valid_rows > 16 ? first_lanes(valid_rows - 16) : __mmask16(0);
  constexpr int kBlock = 6;
  int64_t t = 0;
  for (; t + kBlock <= num_tokens; t += kBlock) {
    gemm_block<kBlock>(tile, depth, x + t * ldx, ldx, y + t * ldy, ldy, mask0, mask1, accumulate);
  }
  const float* xt = x + t * ldx;
  float* yt = y + t * ldy;
  switch (num_tokens - t) {
    case 5:
      return gemm_block<5>(tile, depth, xt, ldx, yt, ldy, mask0, mask1, accumulate);
    case 4:
      return gemm_block<4>(tile, depth, xt, ldx, yt, ldy, mask0, mask1, accumulate);
    case 3:
      return gemm_block<3>(tile, depth, xt, ldx, yt, ldy, mask0, mask1, accumulate);
    case 2:
      return gemm_block<2>(tile, depth, xt, ldx, yt, ldy, mask0, mask1, accumulate);
    case 1:
      return gemm_block<1>(tile, depth, xt, ldx, yt, ldy, mask0, mask1, accumulate);
    default:
      return;
  }
}

float dot_avx512(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

float sum_squares_avx512(const float* x, int64_t n) { return dot_avx512(x, x, n); }

void add_scaled_avx512(float* y, const float* x, float alpha, int64_t n) {
  const __m512 a = _mm512_set1_ps(alpha);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    const __m512 result =
        _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, result);
  }
}

void multiply_avx512(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    const __m512 result =
        _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i));
    _mm512_mask_storeu_ps(y + i, m, result);
  }
}

// e^v for v clamped to [-87, 88], about 1 ulp: e^v = 2^n e^r with n = round(v / ln 2),
// |r| <= ln(2) / 2, and the Cephes expf polynomial for e^r.
__m512 exp_avx512(__m512 v) {
  v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), v);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// gelu_tanh(v) = v * sigmoid(2u) with u = sqrt(2/pi) (v + 0.044715 v^3), because
// 0.5 (1 + tanh(u)) = 1 / (1 + e^(-2u)), and this form keeps full relative accuracy for negative v.
void gelu_tanh_mul_avx512(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
    const __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f),
                                   _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), v3, v));
    const __m512 e = exp_avx512(_mm512_mul_ps(_mm512_set1_ps(-2.0f), u));
    const __m512 gelu = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(gelu, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

// tanh by its odd Taylor series to v^11 for |v| < 0.3 (truncation below 1e-9 relative), else
// 1 - 2 / (e^(2|v|) + 1) with the sign restored.
__m512 tanh_avx512(__m512 v) {
  const __m512 a = _mm512_abs_ps(v);
  const __m512 v2 = _mm512_mul_ps(v, v);
  __m512 p = _mm512_set1_ps(-1382.0f / 155925.0f);
  p = _mm512_fmadd_ps(p, v2, _mm512_set1_ps(62.0f / 2835.0f));
  p = _mm512_fmadd_ps(p, v2, _mm512_set1_ps(-17.0f / 315.0f));
  p = _mm512_fmadd_ps(p, v2, _mm512_set1_ps(2.0f / 15.0f));
  p = _mm512_fmadd_ps(p, v2, _mm512_set1_ps(-1.0f / 3.0f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, v2), v, v);
  const __m512 e = exp_avx512(_mm512_add_ps(a, a));
  const __m512 large =
      _mm512_sub_ps(_mm512_set1_ps(1.0f),
                    _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
  // Copy the sign of v with integer logic: the fp32 and/or forms need AVX-512 DQ.
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN));
  const __m512 signed_large =
      _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(large), sign));
  const __mmask16 is_small = _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.3f), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(is_small, signed_large, small);
}

void softcap_avx512(float* x, float cap, int64_t n) {
  const __m512 c = _mm512_set1_ps(cap);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    const __m512 t = tanh_avx512(_mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), c));
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(c, t));
  }
}

float exp_shifted_sum_avx512(float* x, float shift, int64_t n) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
    _mm512_mask_storeu_ps(x + i, m, e);
    sum = _mm512_mask_add_ps(sum, m, sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}

}  // namespace

const KernelTable* avx512_kernel_table() {
  static const KernelTable table = {
      "avx512",           matvec_rows_avx512, dequantize_segment_avx512,
      gemm_tile_avx512,   dot_avx512,         add_scaled_avx512,
      sum_squares_avx512, multiply_avx512,    gelu_tanh_mul_avx512,
      softcap_avx512,     exp_shifted_sum_avx512,
  };
  return &table;
}

}  // namespace mxgemma

#else

namespace mxgemma {
const KernelTable* avx512_kernel_table() { return nullptr; }
}  // namespace mxgemma

#endif
