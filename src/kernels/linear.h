// Products with bundle weights, dequantizing on the fly. All activations are fp32, row-major.
// Each entry point picks the best implementation for the running CPU (AVX-512, AVX2, NEON or the
// portable scalar code) once, at first use.
#pragma once

#include <cstdint>

#include "kernels/thread_pool.h"
#include "kernels/weight_matrix.h"

namespace mxgemma {

// y[t, r] = sum_c x[t, c] * w[r, c] for t < num_tokens: a linear layer without bias.
// x is [num_tokens, w.cols], y is [num_tokens, w.rows]. num_tokens == 1 is the decode path.
void matmul(const WeightMatrix& w, const float* x, int64_t num_tokens, float* y, ThreadPool& pool);

// Writes row `row` of w, dequantized, to out[w.cols]: the embedding lookup.
void dequantize_row(const WeightMatrix& w, int64_t row, float* out);

// Name of the implementation in use ("avx512", "avx2", "neon", "scalar"), for logs and benchmarks.
const char* kernel_isa();

}  // namespace mxgemma
