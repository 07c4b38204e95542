// The conversion plan of a Hugging Face checkpoint: for each tensor, its name in the bundle,
// whether it is quantized, kept 16-bit or dropped, and the tensors it becomes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/safetensors.h"
#include "convert/mx_quantize.h"

namespace mxgemma {

enum class QuantMode { mxfp4, affine, none };

// "mxfp4", "affine" or "none"; parse_quant_mode throws std::invalid_argument for anything else.
const char* quant_mode_name(QuantMode mode);
QuantMode parse_quant_mode(const std::string& name);

struct ConvertOptions {
  QuantMode mode = QuantMode::mxfp4;
  int bits = 4;        // affine: 4 or 8; mxfp4: 4
  int group_size = 0;  // 0: the mode's default (mxfp4 32, affine 64)
  MxRounding rounding = MxRounding::gpu;
  DType dtype = DType::f16;  // unquantized tensors: f16 or bf16
  // A shard is closed once its tensors reach this many bytes, as the JANG converter does with its
  // 1e9-byte limit.
  uint64_t shard_size = 1'000'000'000;
  std::string keep_16bit_regex;  // bundle names matching it stay 16-bit (wins over quantize)
  std::string quantize_regex;    // bundle names matching it are quantized
  bool force = false;            // replace an existing destination
};

// The checkpoint families `mxgemma convert` reads.
enum class SourceArchitecture {
  // Gemma4ForConditionalGeneration (config model_type "gemma4"): written as the JANG converter
  // names and stores it, which is the layout of the published MXFP4 bundles.
  gemma4,
  // Gemma3ForCausalLM (model_type "gemma3_text"): written with mlx-lm 0.32.2 names, its linears
  // quantized and its embedding kept 16-bit as in the published Gemma 4 bundle.
  gemma3_text,
};

enum class TensorAction { quantize, keep_16bit };

struct OutputTensor {
  std::string name;
  DType dtype = DType::f16;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
};

struct PlannedTensor {
  const Tensor* source = nullptr;
  std::string name;  // bundle name of the weight, e.g. "language_model.model.norm.weight"
  TensorAction action = TensorAction::keep_16bit;
  DType storage_dtype = DType::f16;  // keep_16bit: F16 or BF16
  // keep_16bit to BF16 through fp16 first, as the JANG converter stores media tensors.
  bool bf16_through_fp16 = false;
  bool transpose_last_two = false;  // PyTorch conv1d [C, 1, K] -> MLX [C, K, 1]
  // The weight (or the 16-bit tensor), then scales and, for affine, biases.
  std::vector<OutputTensor> outputs;
};

struct ConversionPlan {
  SourceArchitecture architecture = SourceArchitecture::gemma4;
  std::string model_type;  // config.json model_type
  nlohmann::json config;   // the source config.json
  int group_size = 0;      // resolved
  std::vector<PlannedTensor> tensors;  // in the order they are written
  std::vector<std::string> dropped;    // source tensors left out, for the log
  size_t num_quantized() const;
};

// Reads SRC/config.json and checks the architecture. Throws std::runtime_error naming the file
// and the field at fault.
nlohmann::json read_source_config(const std::filesystem::path& src, SourceArchitecture& architecture);

// Checks every safetensors header of SRC for dtypes the converter reads (F32, F16, BF16) before
// any file is mapped. Throws std::runtime_error naming the shard, the tensor and its dtype.
void check_source_dtypes(const std::filesystem::path& src);

// Decides the fate of every tensor of `store`. Throws std::invalid_argument for bad options (a
// group size the mode does not take, an invalid regex) and std::runtime_error naming the tensor
// that --quantize selects but cannot be quantized.
ConversionPlan plan_conversion(const TensorStore& store, nlohmann::json config,
                               SourceArchitecture architecture, const ConvertOptions& options);

}  // namespace mxgemma
