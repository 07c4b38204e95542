// Building blocks that the Gemma 4 vision and audio towers share: the clipped linear and the
// multimodal embedder that projects tower output into the text model.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "kernels/thread_pool.h"
#include "kernels/weight_matrix.h"

namespace mxgemma {

// A Gemma 4 ClippableLinear: y = clamp(W clamp(x, input_min, input_max), output_min,
// output_max). Bounds stay infinite when the config has no clipped linears.
struct ClippedLinear {
  WeightMatrix weight;
  float input_min = -INFINITY, input_max = INFINITY;
  float output_min = -INFINITY, output_max = INFINITY;
};

// Reads "<module>.linear" and, when use_clipped_linears is set, the four scalar bounds.
ClippedLinear load_clipped_linear(const Bundle& bundle, const std::string& module, bool use_clipped_linears);

// Applies the clipped linear to x [rows, in], writing y [rows, out]. `clipped` is scratch space
// for the clamped input.
void apply_clipped_linear(const ClippedLinear& linear, const float* x, int64_t rows, float* y,
                          std::vector<float>& clipped, ThreadPool& pool);

// Projects tower rows of `width` into the text model as Gemma4MultimodalEmbedder does: a
// scale-free RMSNorm, then `projection`. Throws std::invalid_argument, prefixed with `name`, when
// the input is not whole rows.
std::vector<float> embed_multimodal(const WeightMatrix& projection, std::span<const float> rows, int64_t width,
                                    float eps, const char* name, ThreadPool& pool);

}  // namespace mxgemma
