#include "kernels/vector_ops.h"

#include "kernels/kernel_table.h"

namespace mxgemma {

float dot(const float* a, const float* b, int64_t n) { return active_kernel_table().dot(a, b, n); }

void add_scaled(float* y, const float* x, float alpha, int64_t n) {
  active_kernel_table().add_scaled(y, x, alpha, n);
}

float sum_squares(const float* x, int64_t n) { return active_kernel_table().sum_squares(x, n); }

void multiply(float* y, const float* x, int64_t n) { active_kernel_table().multiply(y, x, n); }

void gelu_tanh_mul(float* gate, const float* up, int64_t n) {
  active_kernel_table().gelu_tanh_mul(gate, up, n);
}

void softcap(float* x, float cap, int64_t n) { active_kernel_table().softcap(x, cap, n); }

}  // namespace mxgemma
