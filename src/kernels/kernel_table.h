// Internal: the per-ISA kernel entry points behind linear.h and vector_ops.h, and the run-time
// pick.
#pragma once

#include <cstdint>

#include "kernels/weight_matrix.h"

namespace mxgemma {

// Rows per prefill tile. The tile is stored transposed, [depth][kTileRows], so one k step loads a
// vector of consecutive rows and the micro-kernel writes y[t, r0 .. r0 + kTileRows) contiguously.
inline constexpr int64_t kTileRows = 32;

struct KernelTable {
  const char* name;

  // y[r] = sum_c w[r, c] * x[c] for r in [row_begin, row_end). For affine weights,
  // x_group_sums[g] is the sum of x over group g, so a group costs scale * sum(code * x) + bias *
  // sum(x).
  void (*matvec_rows)(const WeightMatrix& w, const float* x, const float* x_group_sums, float* y,
                      int64_t row_begin, int64_t row_end);

  // out[i] = w[row, col_begin + i] for i < count. col_begin and count are multiples of the group
  // size for quantized weights.
  void (*dequantize_segment)(const WeightMatrix& w, int64_t row, int64_t col_begin, int64_t count,
                             float* out);

  // y[t * ldy + r] (+)= sum_k tile[k * kTileRows + r] * x[t * ldx + k] for t < num_tokens and
  // r < valid_rows. With accumulate, the sum is added to y instead of stored.
  void (*gemm_tile)(const float* tile, int64_t depth, const float* x, int64_t ldx,
                    int64_t num_tokens, float* y, int64_t ldy, int64_t valid_rows, bool accumulate);

  float (*dot)(const float* a, const float* b, int64_t n);
  void (*add_scaled)(float* y, const float* x, float alpha, int64_t n);
  float (*sum_squares)(const float* x, int64_t n);
  void (*multiply)(float* y, const float* x, int64_t n);
  void (*gelu_tanh_mul)(float* gate, const float* up, int64_t n);
  void (*softcap)(float* x, float cap, int64_t n);
  // x[i] = exp(x[i] - shift); returns the sum of the new values (a softmax's denominator).
  float (*exp_shifted_sum)(float* x, float shift, int64_t n);
};

// Each returns nullptr when the build has no code for that ISA (wrong architecture).
const KernelTable& scalar_kernel_table();
const KernelTable* avx2_kernel_table();
const KernelTable* avx512_kernel_table();
const KernelTable* neon_kernel_table();

// The table in use: chosen once from the CPU features, or forced by
// MXGEMMA_ISA=scalar|avx2|avx512|neon. Throws std::runtime_error when the forced level is unknown
// or the CPU lacks it.
const KernelTable& active_kernel_table();

// The choice active_kernel_table() makes for an MXGEMMA_ISA value. nullptr or "" picks the best
// level this CPU supports.
const KernelTable& select_kernel_table(const char* forced_isa);

// Picks the table for `isa_name` ("scalar", "avx2", "avx512", "neon") or throws std::runtime_error
// when this CPU or build cannot run it. Tests and benchmarks use it to compare every level.
const KernelTable& kernel_table_for(const char* isa_name);

// matmul() with an explicit table, so tests and benchmarks can run each ISA in one process.
class ThreadPool;
void matmul_with_table(const KernelTable& table, const WeightMatrix& w, const float* x,
                       int64_t num_tokens, float* y, ThreadPool& pool);

// Shared helpers for the scalar parts of every ISA.
float e8m0_to_float(uint8_t byte);
float affine_scale_at(const void* values, ScaleType type, int64_t index);
inline constexpr float kE2m1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

}  // namespace mxgemma
