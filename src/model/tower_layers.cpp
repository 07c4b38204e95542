#include "model/tower_layers.h"

#include <algorithm>
#include <stdexcept>

#include "kernels/linear.h"
#include "model/norms_rope.h"

namespace mxgemma {
namespace {

float clamp_value(float x, float low, float high) { return std::min(std::max(x, low), high); }

}  // namespace

ClippedLinear load_clipped_linear(const Bundle& bundle, const std::string& module, bool use_clipped_linears) {
  ClippedLinear linear;
  linear.weight = bundle.linear(module + ".linear");
  if (use_clipped_linears) {
    linear.input_min = bundle.tensor_f32(module + ".input_min").at(0);
    linear.input_max = bundle.tensor_f32(module + ".input_max").at(0);
    linear.output_min = bundle.tensor_f32(module + ".output_min").at(0);
    linear.output_max = bundle.tensor_f32(module + ".output_max").at(0);
  }
  return linear;
}

void apply_clipped_linear(const ClippedLinear& linear, const float* x, int64_t rows, float* y,
                          std::vector<float>& clipped, ThreadPool& pool) {
  const int64_t in = linear.weight.cols;
  const int64_t out = linear.weight.rows;
  clipped.resize(size_t(rows * in));
  for (int64_t i = 0; i < rows * in; ++i) clipped[i] = clamp_value(x[i], linear.input_min, linear.input_max);
  matmul(linear.weight, clipped.data(), rows, y, pool);
  for (int64_t i = 0; i < rows * out; ++i) y[i] = clamp_value(y[i], linear.output_min, linear.output_max);
}

std::vector<float> embed_multimodal(const WeightMatrix& projection, std::span<const float> rows, int64_t width,
                                    float eps, const char* name, ThreadPool& pool) {
  if (rows.size() % size_t(width) != 0) {
    throw std::invalid_argument(std::string(name) + ": " + std::to_string(rows.size()) +
                                " values are not whole rows of the tower's output width " + std::to_string(width));
  }
  const int64_t count = int64_t(rows.size()) / width;
  std::vector<float> normed(rows.begin(), rows.end());
  rms_norm_rows(normed.data(), count, width, nullptr, eps);
  std::vector<float> projected(size_t(count * projection.rows));
  matmul(projection, normed.data(), count, projected.data(), pool);
  return projected;
}

}  // namespace mxgemma
