// Softmax attention over a whole sequence with no mask, as the Gemma 4 vision encoder uses it
// over an image's patches. The products run on the prefill GEMM micro-kernel.
#pragma once

#include <cstdint>

#include "kernels/thread_pool.h"

namespace mxgemma {

// For each query head h and the key/value head g = h / (heads / kv_heads):
//   out_h = softmax(scale * Q_h K_g^T) V_g,
// with q and out [rows, heads * head_dim] and k and v [rows, kv_heads * head_dim], row-major.
// Throws std::invalid_argument when heads is not a multiple of kv_heads.
void bidirectional_attention(const float* q, const float* k, const float* v, int64_t rows, int heads, int kv_heads,
                             int head_dim, float scale, float* out, ThreadPool& pool);

}  // namespace mxgemma
