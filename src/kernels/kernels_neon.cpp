// Arm NEON (AArch64 Advanced SIMD) kernels. Formats and operations without NEON code here use the
// scalar reference: affine weights, dequantize_segment, gelu_tanh_mul and softcap.
// NOTE: this file is compiled only on AArch64 and has not been built or run on one yet.
#include "kernels/kernel_table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <vector>

namespace mxgemma {
namespace {

struct LoadF32 {
  using Element = float;
  static float32x4_t full(const float* p) { return vld1q_f32(p); }
  static float one(const float* p) { return *p; }
};
struct LoadF16 {
  using Element = uint16_t;
  static float32x4_t full(const uint16_t* p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
  }
  static float one(const uint16_t* p) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_dup_u16(p))), 0);
  }
};
struct LoadBf16 {
  using Element = uint16_t;
  static float32x4_t full(const uint16_t* p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
  }
  static float one(const uint16_t* p) { return vgetq_lane_f32(full_dup(p), 0); }
  static float32x4_t full_dup(const uint16_t* p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_dup_u16(p), 16));
  }
};

template <class Load>
void dense_matvec(const WeightMatrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  const auto* base = static_cast<const typename Load::Element*>(w.data);
  for (int64_t r = r0; r < r1; ++r) {
    const auto* row = base + r * w.cols;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t c = 0;
    for (; c + 8 <= w.cols; c += 8) {
      acc0 = vfmaq_f32(acc0, Load::full(row + c), vld1q_f32(x + c));
      acc1 = vfmaq_f32(acc1, Load::full(row + c + 4), vld1q_f32(x + c + 4));
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; c < w.cols; ++c) sum += Load::one(row + c) * x[c];
    y[r] = sum;
  }
}

// Multiplies 16 int8 weights by 16 floats of x, accumulating into acc.
float32x4_t fma_int8x16(int8x16_t values, const float* x, float32x4_t acc) {
  const int16x8_t low = vmovl_s8(vget_low_s8(values));
  const int16x8_t high = vmovl_s8(vget_high_s8(values));
  acc = vfmaq_f32(acc, vcvtq_f32_s32(vmovl_s16(vget_low_s16(low))), vld1q_f32(x));
  acc = vfmaq_f32(acc, vcvtq_f32_s32(vmovl_s16(vget_high_s16(low))), vld1q_f32(x + 4));
  acc = vfmaq_f32(acc, vcvtq_f32_s32(vmovl_s16(vget_low_s16(high))), vld1q_f32(x + 8));
  return vfmaq_f32(acc, vcvtq_f32_s32(vmovl_s16(vget_high_s16(high))), vld1q_f32(x + 12));
}

// tbl looks up E2M1 codes in a table of twice their values (all integers), so the scale is halved.
// x is read as each 32-block's 16 even then 16 odd elements, the order of low and high nibbles.
void mxfp4_matvec(const WeightMatrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  thread_local std::vector<float> x_pairs;
  x_pairs.resize(size_t(w.cols));
  for (int64_t b = 0; b < w.cols; b += 32) {
    for (int j = 0; j < 16; ++j) {
      x_pairs[size_t(b + j)] = x[b + 2 * j];
      x_pairs[size_t(b + 16 + j)] = x[b + 2 * j + 1];
    }
  }
  static const int8_t kDoubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  const int8x16_t lut = vld1q_s8(kDoubled);
  const int64_t groups = w.cols / 32;

  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* codes = static_cast<const uint8_t*>(w.data) + r * (w.cols / 2);
    const uint8_t* scales = w.e8m0_scales + r * groups;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t g = 0; g < groups; ++g) {
      const uint8x16_t bytes = vld1q_u8(codes + g * 16);
      const int8x16_t even = vqtbl1q_s8(lut, vandq_u8(bytes, vdupq_n_u8(0x0f)));
      const int8x16_t odd = vqtbl1q_s8(lut, vshrq_n_u8(bytes, 4));
      float32x4_t group_sum = fma_int8x16(even, x_pairs.data() + g * 32, vdupq_n_f32(0.0f));
      group_sum = fma_int8x16(odd, x_pairs.data() + g * 32 + 16, group_sum);
      acc = vfmaq_n_f32(acc, group_sum, 0.5f * e8m0_to_float(scales[g]));
    }
    y[r] = vaddvq_f32(acc);
  }
}

void matvec_rows_neon(const WeightMatrix& w, const float* x, const float* x_group_sums, float* y,
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
      return scalar_kernel_table().matvec_rows(w, x, x_group_sums, y, r0, r1);
  }
}

// 2 tokens x 32 rows in 16 accumulators.
void gemm_tile_neon(const float* tile, int64_t depth, const float* x, int64_t ldx,
                    int64_t num_tokens, float* y, int64_t ldy, int64_t valid_rows,
                    bool accumulate) {
  static_assert(kTileRows == 32, "the NEON micro-kernel holds a tile row in eight registers");
  for (int64_t t0 = 0; t0 < num_tokens; t0 += 2) {
    const int tokens = num_tokens - t0 >= 2 ? 2 : 1;
    float32x4_t acc[2][8];
    for (int t = 0; t < 2; ++t) {
      for (int j = 0; j < 8; ++j) acc[t][j] = vdupq_n_f32(0.0f);
    }
    for (int64_t k = 0; k < depth; ++k) {
      for (int t = 0; t < tokens; ++t) {
        const float xk = x[(t0 + t) * ldx + k];
        for (int j = 0; j < 8; ++j) {
          acc[t][j] = vfmaq_n_f32(acc[t][j], vld1q_f32(tile + k * kTileRows + 4 * j), xk);
        }
      }
    }
    for (int t = 0; t < tokens; ++t) {
      float buffer[kTileRows];
      for (int j = 0; j < 8; ++j) vst1q_f32(buffer + 4 * j, acc[t][j]);
      float* out = y + (t0 + t) * ldy;
      for (int64_t r = 0; r < valid_rows; ++r) out[r] = accumulate ? out[r] + buffer[r] : buffer[r];
    }
  }
}

float dot_neon(const float* a, const float* b, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
  }
  float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float sum_squares_neon(const float* x, int64_t n) { return dot_neon(x, x, n); }

void add_scaled_neon(float* y, const float* x, float alpha, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), alpha));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

void multiply_neon(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
  for (; i < n; ++i) y[i] *= x[i];
}

}  // namespace

const KernelTable* neon_kernel_table() {
  const KernelTable& scalar = scalar_kernel_table();
  static const KernelTable table = {
      "neon",           matvec_rows_neon, scalar.dequantize_segment,
      gemm_tile_neon,   dot_neon,         add_scaled_neon,
      sum_squares_neon, multiply_neon,    scalar.gelu_tanh_mul,
      scalar.softcap,   scalar.exp_shifted_sum,
  };
  return &table;
}

}  // namespace mxgemma

#else

namespace mxgemma {
const KernelTable* neon_kernel_table() { return nullptr; }
}  // namespace mxgemma

#endif
