// Vectorized helpers on fp32 rows for the model's norms, residuals and activations. Each uses the
// same run-time ISA pick as matmul() (see kernel_isa()).
#pragma once

#include <cstdint>

namespace mxgemma {

// sum_i a[i] * b[i].
float dot(const float* a, const float* b, int64_t n);

// y += alpha * x.
void add_scaled(float* y, const float* x, float alpha, int64_t n);

// sum_i x[i]^2, the core of RMS norm.
float sum_squares(const float* x, int64_t n);

// y *= x, elementwise.
void multiply(float* y, const float* x, int64_t n);

// gate = gelu_tanh(gate) * up, where gelu_tanh(v) = 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715
// v^3))), PyTorch's gelu(approximate="tanh"). Within about 5e-7 relative of the exact value for
// gate > -2. Below that the result is under 0.05 * |up| and its error under 1e-8 * |up| (the fp32
// rounding of the tanh argument dominates there).
void gelu_tanh_mul(float* gate, const float* up, int64_t n);

// x = cap * tanh(x / cap): logit soft-capping, within about 1e-6 relative of the exact value.
void softcap(float* x, float cap, int64_t n);

}  // namespace mxgemma
