#include "convert/conversion_plan.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <regex>
#include <stdexcept>

#include "util/log.h"

namespace mxgemma {
namespace fs = std::filesystem;
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Multimodal towers and embedders, which the JANG converter never quantizes and stores as BF16.
constexpr std::array<const char*, 5> kGemma4MediaFragments = {
    "vision_embedder", "embed_vision", "embed_audio", "vision_tower", "audio_tower"};

bool is_gemma4_media(const std::string& source_name) {
  const std::string lower = lowercase(source_name);
  return std::any_of(kGemma4MediaFragments.begin(), kGemma4MediaFragments.end(),
                     [&](const char* fragment) { return contains(lower, fragment); });
}

// HF "model.language_model.X" -> "language_model.model.X", "model.vision_tower.X" ->
// "vision_tower.X": the rename of mlx-vlm's Gemma 4 sanitize, which the JANG converter applies
// and nothing more.
std::string gemma4_bundle_name(const std::string& source_name) {
  std::string name = source_name;
  if (starts_with(name, "model.")) name = name.substr(6);
  if (starts_with(name, "language_model.") && !starts_with(name, "language_model.model.")) {
    name = "language_model.model." + name.substr(15);
  }
  return name;
}

// The JANG converter's quant_policy without its diagnostic options: true when the tensor stays
// 16-bit.
bool gemma4_keeps_16bit(const std::string& source_name, size_t ndim) {
  if (is_gemma4_media(source_name)) return true;
  if (ends_with(source_name, "embed_tokens.weight")) return true;  // tied output head
  if (contains(lowercase(source_name), "norm") || ends_with(source_name, ".bias") ||
      ends_with(source_name, "layer_scalar") || ends_with(source_name, "pos_embedding") ||
      ends_with(source_name, "embed_scale")) {
    return true;
  }
  if (source_name.find('.') == std::string::npos) return true;
  return ndim < 2;
}

// Layers at or past num_hidden_layers - num_kv_shared_layers reuse an earlier layer's K and V, so
// their k/v projections and norms are never read. The published E2B bundle has none (its 277
// quantized tensors leave them out), and mlx-vlm's sanitize drops them.
bool is_unused_shared_kv(const std::string& source_name, int first_shared_layer) {
  static const std::regex pattern(
      R"(language_model\.layers\.(\d+)\.self_attn\.(k_proj|v_proj|k_norm|v_norm)\.)");
  std::smatch match;
  if (!std::regex_search(source_name, match, pattern)) return false;
  return std::stoi(match[1].str()) >= first_shared_layer;
}

// The published Gemma 4 bundle's rule carried over: every linear is quantized, and the token
// embedding (also the output head), the norms and anything else stay 16-bit. mlx-lm's convert also
// quantizes the embedding. Gemma 3 270M then replies "F\nF..." and without it "Paris", so
// that is opt-in: --quantize embed_tokens.
bool gemma3_is_quantizable_module(const std::string& name, const std::vector<int64_t>& shape) {
  return shape.size() == 2 && ends_with(name, ".weight") && !contains(name, "norm") &&
         !contains(name, "embed_tokens");
}

int first_shared_kv_layer(const nlohmann::json& config) {
  const nlohmann::json& text = config.contains("text_config") ? config["text_config"] : config;
  const int layers = text.value("num_hidden_layers", 0);
  const int shared = text.contains("num_kv_shared_layers") && text["num_kv_shared_layers"].is_number()
                         ? text["num_kv_shared_layers"].get<int>()
                         : 0;
  return shared > 0 ? layers - shared : layers + 1;
}

std::regex compile_regex(const std::string& pattern, const char* option) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& error) {
    throw std::invalid_argument(std::string(option) + " \"" + pattern +
                                "\": invalid regular expression: " + error.what());
  }
}

uint64_t byte_count(const std::vector<int64_t>& shape, DType dtype) {
  uint64_t count = dtype_size(dtype);
  for (int64_t dim : shape) count *= static_cast<uint64_t>(dim);
  return count;
}

OutputTensor make_output(std::string name, DType dtype, std::vector<int64_t> shape) {
  OutputTensor output{std::move(name), dtype, std::move(shape), 0};
  output.nbytes = byte_count(output.shape, dtype);
  return output;
}

void add_quantized_outputs(PlannedTensor& planned, const ConvertOptions& options, int group_size) {
  const std::string base =
      ends_with(planned.name, ".weight") ? planned.name.substr(0, planned.name.size() - 7) : planned.name;
  std::vector<int64_t> weight_shape = planned.source->shape;
  std::vector<int64_t> scales_shape = planned.source->shape;
  const int64_t width = planned.source->shape.back();
  weight_shape.back() = width * options.bits / 32;
  scales_shape.back() = width / group_size;
  planned.outputs.push_back(make_output(base + ".weight", DType::u32, weight_shape));
  if (options.mode == QuantMode::mxfp4) {
    planned.outputs.push_back(make_output(base + ".scales", DType::u8, scales_shape));
  } else {
    planned.outputs.push_back(make_output(base + ".scales", DType::f16, scales_shape));
    planned.outputs.push_back(make_output(base + ".biases", DType::f16, scales_shape));
  }
}

void add_16bit_output(PlannedTensor& planned) {
  std::vector<int64_t> shape = planned.source->shape;
  if (planned.transpose_last_two) std::swap(shape[shape.size() - 2], shape[shape.size() - 1]);
  planned.outputs.push_back(make_output(planned.name, planned.storage_dtype, shape));
}

int resolve_group_size(const ConvertOptions& options) {
  if (options.mode == QuantMode::mxfp4) {
    if (options.bits != 4) {
      throw std::invalid_argument("--q-bits " + std::to_string(options.bits) +
                                  ": mxfp4 stores 4-bit codes; use --q-bits 4");
    }
    if (options.group_size != 0 && options.group_size != kMxfp4GroupSize) {
      throw std::invalid_argument("--q-group-size " + std::to_string(options.group_size) +
                                  ": mxfp4 groups are 32 elements; use --q-group-size 32");
    }
    return kMxfp4GroupSize;
  }
  if (options.mode == QuantMode::affine) {
    if (options.bits != 4 && options.bits != 8) {
      throw std::invalid_argument("--q-bits " + std::to_string(options.bits) +
                                  ": affine quantization takes 4 or 8 bits");
    }
    const int group_size = options.group_size == 0 ? 64 : options.group_size;
    if (group_size != 32 && group_size != 64 && group_size != 128) {
      throw std::invalid_argument("--q-group-size " + std::to_string(group_size) +
                                  ": affine groups are 32, 64 or 128 elements");
    }
    return group_size;
  }
  return 0;
}

}  // namespace

const char* quant_mode_name(QuantMode mode) {
  switch (mode) {
    case QuantMode::mxfp4:
      return "mxfp4";
    case QuantMode::affine:
      return "affine";
    case QuantMode::none:
      return "none";
  }
  return "?";
}

QuantMode parse_quant_mode(const std::string& name) {
  if (name == "mxfp4") return QuantMode::mxfp4;
  if (name == "affine") return QuantMode::affine;
  if (name == "none") return QuantMode::none;
  throw std::invalid_argument("--q-mode " + name + ": expected mxfp4, affine or none");
}

size_t ConversionPlan::num_quantized() const {
  return static_cast<size_t>(std::count_if(tensors.begin(), tensors.end(), [](const PlannedTensor& t) {
    return t.action == TensorAction::quantize;
  }));
}

nlohmann::json read_source_config(const fs::path& src, SourceArchitecture& architecture) {
  const fs::path path = src / "config.json";
  if (!fs::is_regular_file(path)) {
    throw std::runtime_error(src.string() + ": not a Hugging Face checkpoint: config.json not found");
  }
  std::ifstream file(path);
  nlohmann::json config = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    throw std::runtime_error(path.string() + ": not a JSON object");
  }
  if (!config.contains("model_type") || !config["model_type"].is_string()) {
    throw std::runtime_error(path.string() + ": model_type missing; cannot tell the architecture");
  }
  const std::string model_type = config["model_type"].get<std::string>();
  if (model_type == "gemma4") {
    architecture = SourceArchitecture::gemma4;
  } else if (model_type == "gemma3_text") {
    architecture = SourceArchitecture::gemma3_text;
  } else {
    throw std::runtime_error(path.string() + ": model_type \"" + model_type +
                             "\" is not supported; mxgemma convert reads gemma4 and gemma3_text "
                             "checkpoints");
  }
  return config;
}

void check_source_dtypes(const fs::path& src) {
  std::vector<fs::path> shards;
  for (const auto& entry : fs::directory_iterator(src)) {
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors") {
      shards.push_back(entry.path());
    }
  }
  if (shards.empty()) {
    throw std::runtime_error(src.string() +
                             ": not a Hugging Face checkpoint: no .safetensors weights found");
  }
  std::sort(shards.begin(), shards.end());
  for (const fs::path& shard : shards) {
    std::ifstream file(shard, std::ios::binary);
    uint64_t header_size = 0;
    file.read(reinterpret_cast<char*>(&header_size), sizeof header_size);
    if (!file || header_size > kMaxSafetensorsHeaderBytes) {
      throw std::runtime_error(shard.string() + ": not a safetensors file (bad header length)");
    }
    std::string header(header_size, '\0');
    file.read(header.data(), static_cast<std::streamsize>(header_size));
    const nlohmann::json parsed = nlohmann::json::parse(header, nullptr, false);
    if (!file || parsed.is_discarded() || !parsed.is_object()) {
      throw std::runtime_error(shard.string() + ": not a safetensors file (header is not JSON)");
    }
    for (const auto& [name, entry] : parsed.items()) {
      if (name == "__metadata__" || !entry.is_object() || !entry.contains("dtype")) continue;
      const std::string dtype = entry["dtype"].is_string() ? entry["dtype"].get<std::string>() : "?";
      if (dtype != "F32" && dtype != "F16" && dtype != "BF16") {
        throw std::runtime_error(shard.string() + ": tensor " + name + ": dtype " + dtype +
                                 " is not supported; mxgemma convert reads F32, F16 and BF16 "
                                 "weights (U8/U32 mean the checkpoint is already quantized)");
      }
    }
  }
}

ConversionPlan plan_conversion(const TensorStore& store, nlohmann::json config,
                               SourceArchitecture architecture, const ConvertOptions& options) {
  if (options.dtype != DType::f16 && options.dtype != DType::bf16) {
    throw std::invalid_argument("--dtype: unquantized tensors are stored as float16 or bfloat16");
  }
  ConversionPlan plan;
  plan.architecture = architecture;
  plan.model_type = config.value("model_type", "");
  plan.group_size = resolve_group_size(options);
  const std::optional<std::regex> keep_regex =
      options.keep_16bit_regex.empty() ? std::nullopt
                                       : std::optional(compile_regex(options.keep_16bit_regex, "--keep-16bit"));
  const std::optional<std::regex> quantize_regex =
      options.quantize_regex.empty() ? std::nullopt
                                     : std::optional(compile_regex(options.quantize_regex, "--quantize"));
  const int first_shared_layer = first_shared_kv_layer(config);
  plan.config = std::move(config);

  std::vector<std::string> names = store.names();
  std::sort(names.begin(), names.end());
  for (const std::string& source_name : names) {
    const Tensor& source = store.get(source_name);
    const bool gemma4 = architecture == SourceArchitecture::gemma4;
    if (ends_with(source_name, "_scale_inv") ||
        (gemma4 && is_unused_shared_kv(source_name, first_shared_layer))) {
      plan.dropped.push_back(source_name);
      continue;
    }

    PlannedTensor planned;
    planned.source = &source;
    planned.name = gemma4 ? gemma4_bundle_name(source_name) : source_name;

    bool quantize = gemma4 ? !gemma4_keeps_16bit(source_name, source.shape.size())
                           : gemma3_is_quantizable_module(source_name, source.shape);
    const bool divisible = !source.shape.empty() && plan.group_size > 0 &&
                           source.shape.back() % plan.group_size == 0;
    if (quantize && !divisible) {
      MXG_LOG_DEBUG("convert: %s keeps 16 bits: width %lld is not a multiple of group size %d",
                    planned.name.c_str(), static_cast<long long>(source.shape.back()), plan.group_size);
      quantize = false;
    }
    if (quantize_regex && std::regex_search(planned.name, *quantize_regex) &&
        options.mode != QuantMode::none) {
      if (source.shape.size() < 2 || !divisible) {
        throw std::runtime_error(source.file + ": tensor " + source_name + " " + source.shape_string() +
                                 " is selected by --quantize but cannot be quantized: it needs at "
                                 "least 2 dimensions and a last dimension divisible by " +
                                 std::to_string(plan.group_size));
      }
      quantize = true;
    }
    if (keep_regex && std::regex_search(planned.name, *keep_regex)) quantize = false;
    if (options.mode == QuantMode::none) quantize = false;

    if (quantize) {
      planned.action = TensorAction::quantize;
      add_quantized_outputs(planned, options, plan.group_size);
    } else {
      planned.action = TensorAction::keep_16bit;
      const bool media = gemma4 && is_gemma4_media(source_name);
      planned.storage_dtype = media ? DType::bf16 : options.dtype;
      planned.bf16_through_fp16 = media && options.dtype == DType::f16;
      planned.transpose_last_two = gemma4 && ends_with(planned.name, "conv1d.weight") &&
                                   source.shape.size() == 3 && source.shape.back() != 1;
      add_16bit_output(planned);
    }
    plan.tensors.push_back(std::move(planned));
  }
  if (plan.tensors.empty()) {
    throw std::runtime_error(store.dir().string() + ": the checkpoint holds no tensors to convert");
  }
  return plan;
}

}  // namespace mxgemma
