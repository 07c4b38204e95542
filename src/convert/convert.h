// `mxgemma convert`: a Hugging Face checkpoint folder (config.json, safetensors in F32, F16 or
// BF16, tokenizer files) to an MLX bundle. The bundle has quantized weights in shards with
// model.safetensors.index.json, config.json with MLX's quantization block, the tokenizer and
// template files copied, and a model card README.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "convert/conversion_plan.h"

namespace mxgemma {

struct ConvertResult {
  std::string model_type;
  size_t num_tensors = 0;    // tensors written, scales and biases included
  size_t num_quantized = 0;  // quantized weights
  size_t num_shards = 0;
  uint64_t total_bytes = 0;  // sum of the shard file sizes (the index's total_size)
  double seconds = 0.0;
};

// Converts `src` into the bundle folder `dst`. The bundle is built in a temporary folder beside
// `dst` and renamed into place only when complete. On any error the temporary folder is removed
// and `dst` is left as it was. Peak memory stays near one chunk of one tensor because the source
// is memory-mapped. Throws std::runtime_error naming the file, tensor or field at fault, and
// std::invalid_argument for bad options.
ConvertResult convert_checkpoint(const std::filesystem::path& src, const std::filesystem::path& dst,
                                 const ConvertOptions& options);

}  // namespace mxgemma
