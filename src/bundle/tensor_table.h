// The declarative table of every tensor a model needs, computed from its config and the bundle's
// naming layout. Loading checks iterate this one table, so a tensor is named and shaped here only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bundle/config.h"

namespace mxgemma {

// Tensor naming and storage conventions found in the wild.
enum class BundleLayout {
  // Converter of the Osaurus/JANG bundles: Hugging Face names kept (".linear." inside clipped
  // linears), convolution weights in PyTorch layout, no k/v tensors on KV-shared layers.
  hf_names,
  // mlx-vlm's convert: sanitized names, MLX convolution layout.
  mlx_vlm,
  // mlx-lm text-only bundle (gemma3_text): "model.layers.N..." names.
  mlx_lm,
};
const char* layout_name(BundleLayout layout);

enum class TensorKind {
  // Weight of a Linear or Embedding with logical shape [out, in], and `name` is the module path.
  // It is quantized iff "<name>.scales" exists, else "<name>.weight" is 16- or 32-bit.
  linear,
  // A 16- or 32-bit float tensor of exactly `shape`.
  dense,
  // One float value (clip bounds, layer_scalar), stored with shape [] or [1].
  scalar,
};

struct TensorSpec {
  std::string name;
  TensorKind kind = TensorKind::dense;
  std::vector<int64_t> shape;
  bool required = true;
  // The config field that implies the tensor, for "missing tensor" messages.
  std::string required_by;
};

// Prefix of text-model tensor names: "language_model.model." or, for mlx_lm, "model.".
std::string text_tensor_prefix(BundleLayout layout);

// Every tensor of the text model, the vision tower and the audio tower that `config` implies.
// KV-shared layers list their k_proj, v_proj and k_norm as optional: checkpoints converted from
// Hugging Face may carry them although no layer reads them.
std::vector<TensorSpec> model_tensor_table(const ModelConfig& config, BundleLayout layout);

// "[256, 1536]"
std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace mxgemma
