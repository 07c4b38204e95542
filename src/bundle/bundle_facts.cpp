#include "bundle/bundle_facts.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "bundle/bundle.h"
#include "bundle/config.h"
#include "bundle/json_fields.h"
#include "bundle/safetensors.h"
#include "bundle/tensor_table.h"

namespace mxgemma {

namespace {

namespace fs = std::filesystem;

constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleShard = "model.safetensors";

// Findings of one kind past this count are summed up in one line, so that a missing shard does
// not bury the other findings under hundreds of "missing tensor" lines.
constexpr int kMaxFindingsPerKind = 12;

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": failed to open");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Collects findings. Each kind keeps its first kMaxFindingsPerKind lines and counts the rest.
class FindingLog {
 public:
  void add(const std::string& kind, FindingSeverity severity, const std::string& message) {
    Kind& entry = kinds_[kind];
    entry.severity = severity;
    ++entry.count;
    if (entry.count <= kMaxFindingsPerKind) findings_.push_back({severity, message});
  }
  void error(const std::string& kind, const std::string& message) {
    add(kind, FindingSeverity::error, message);
  }
  void warning(const std::string& kind, const std::string& message) {
    add(kind, FindingSeverity::warning, message);
  }

  std::vector<BundleFinding> finish() {
    for (const auto& [kind, entry] : kinds_) {
      if (entry.count > kMaxFindingsPerKind) {
        findings_.push_back({entry.severity, std::to_string(entry.count - kMaxFindingsPerKind) +
                                                 " more findings of the kind \"" + kind + "\""});
      }
    }
    return std::move(findings_);
  }

 private:
  struct Kind {
    FindingSeverity severity = FindingSeverity::error;
    int count = 0;
  };
  std::map<std::string, Kind> kinds_;
  std::vector<BundleFinding> findings_;
};

// A JSON file of the bundle, or nullopt (with a finding) when it is absent or invalid.
std::optional<nlohmann::json> read_json_object(const fs::path& path, FindingLog& log,
                                               bool required) {
  if (!fs::exists(path)) {
    if (required) log.error("missing file", path.string() + ": not found");
    return std::nullopt;
  }
  try {
    nlohmann::json json = read_json_file(path);
    if (!json.is_object()) {
      log.error("invalid file", path.string() + ": expected a JSON object, found " +
                                    json_type_name(json));
      return std::nullopt;
    }
    return json;
  } catch (const std::exception& error) {
    log.error("invalid file", error.what());
    return std::nullopt;
  }
}

std::string json_string(const nlohmann::json& object, const std::string& key) {
  if (!object.is_object()) return "";
  const auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : "";
}

int json_int(const nlohmann::json& object, const std::string& key, int fallback = 0) {
  if (!object.is_object()) return fallback;
  const auto found = object.find(key);
  return found != object.end() && found->is_number_integer() ? found->get<int>() : fallback;
}

// ---------------------------------------------------------------------------------------------
// Safetensors headers, read without mapping the shard so a truncated file can still be listed.

struct TensorInfo {
  std::string dtype;  // as the header spells it
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  std::string file;
};

// Element size of every safetensors dtype, or 0 for an unknown one.
size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1},
      {"U16", 2},  {"I16", 2}, {"F16", 2}, {"BF16", 2},    {"U32", 4},     {"I32", 4},
      {"F32", 4},  {"U64", 8}, {"I64", 8}, {"F64", 8}};
  const auto found = sizes.find(dtype);
  return found == sizes.end() ? 0 : found->second;
}

// The dtype name mxgemma reads it as ("F8_E8M0" scales read as U8), or empty when unsupported.
std::string supported_dtype(const std::string& dtype) {
  try {
    return dtype_name(parse_dtype(dtype));
  } catch (const std::invalid_argument&) {
    return "";
  }
}

std::string shape_of(const std::vector<int64_t>& shape) { return shape_to_string(shape); }

// Reads one shard's header into `tensors` and fills `shard`. Every problem becomes a finding.
void read_shard(const fs::path& dir, ShardFacts& shard, std::map<std::string, TensorInfo>& tensors,
                FindingLog& log) {
  const fs::path path = dir / shard.file;
  const std::string where = path.string();
  shard.present = fs::is_regular_file(path);
  if (!shard.present) return;
  shard.file_bytes = fs::file_size(path);

  std::ifstream in(path, std::ios::binary);
  uint8_t length_bytes[8] = {};
  if (!in.read(reinterpret_cast<char*>(length_bytes), 8)) {
    log.error("invalid shard", where + ": shorter than the 8-byte safetensors header length");
    return;
  }
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | length_bytes[i];
  if (header_length > kMaxSafetensorsHeaderBytes || 8 + header_length > shard.file_bytes) {
    log.error("invalid shard", where + ": header length " + std::to_string(header_length) +
                                   " does not fit in the file of " +
                                   std::to_string(shard.file_bytes) + " bytes (truncated?)");
    return;
  }
  std::string header(header_length, '\0');
  in.read(header.data(), std::streamsize(header_length));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(header);
  } catch (const nlohmann::json::parse_error& error) {
    log.error("invalid shard", where + ": header is not valid JSON: " + error.what());
    return;
  }
  if (!json.is_object()) {
    log.error("invalid shard", where + ": header is not a JSON object");
    return;
  }

  uint64_t data_bytes = 0;
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") continue;
    const std::string tensor_where = where + ": " + name;
    if (!entry.is_object() || !entry.contains("dtype") || !entry["dtype"].is_string() ||
        !entry.contains("shape") || !entry["shape"].is_array() ||
        !entry.contains("data_offsets") || !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2) {
      log.error("invalid shard", tensor_where + ": header entry lacks dtype, shape or data_offsets");
      continue;
    }
    TensorInfo info;
    info.dtype = entry["dtype"].get<std::string>();
    info.file = shard.file;
    bool valid = true;
    for (const auto& dim : entry["shape"]) {
      if (!dim.is_number_unsigned()) valid = false;
      info.shape.push_back(valid ? dim.get<int64_t>() : 0);
    }
    const auto& offsets = entry["data_offsets"];
    if (!valid || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      log.error("invalid shard", tensor_where + ": shape or data_offsets are not unsigned integers");
      continue;
    }
    const uint64_t begin = offsets[0].get<uint64_t>();
    const uint64_t end = offsets[1].get<uint64_t>();
    info.nbytes = end >= begin ? end - begin : 0;
    data_bytes = std::max(data_bytes, end);

    const size_t element_size = safetensors_dtype_size(info.dtype);
    if (element_size == 0) {
      log.error("invalid shard", tensor_where + ": unknown dtype " + info.dtype);
    } else if (supported_dtype(info.dtype).empty()) {
      log.error("unsupported dtype", tensor_where + ": dtype " + info.dtype +
                                         " is not supported (supported: F32, F16, BF16, U32, U8)");
    } else {
      uint64_t numel = 1;
      for (int64_t dim : info.shape) numel *= uint64_t(dim);
      if (end < begin || numel * element_size != info.nbytes) {
        log.error("invalid shard", tensor_where + ": data_offsets span " +
                                       std::to_string(info.nbytes) + " bytes, but shape " +
                                       shape_of(info.shape) + " of " + info.dtype + " needs " +
                                       std::to_string(numel * element_size));
      }
    }
    if (tensors.count(name)) {
      log.error("duplicate tensor", tensor_where + ": also in " + tensors[name].file);
      continue;
    }
    tensors.emplace(name, std::move(info));
    ++shard.num_tensors;
  }

  shard.data_bytes = 8 + header_length + data_bytes;
  if (shard.data_bytes > shard.file_bytes) {
    log.error("truncated shard", where + ": file is " + std::to_string(shard.file_bytes) +
                                     " bytes, but its header declares " +
                                     std::to_string(shard.data_bytes) + " (truncated)");
  } else if (shard.data_bytes < shard.file_bytes) {
    log.warning("shard size", where + ": " + std::to_string(shard.file_bytes - shard.data_bytes) +
                                  " bytes after the last tensor");
  }
}

// Finds the shards (through the index when there is one), reads their headers and checks the
// index against them.
void read_weights(const fs::path& dir, BundleFacts& facts,
                  std::map<std::string, TensorInfo>& tensors, FindingLog& log) {
  const fs::path index_path = dir / kIndexFile;
  std::map<std::string, std::string> weight_map;  // tensor -> shard file
  std::vector<std::string> shard_files;
  facts.has_index = fs::exists(index_path);

  if (facts.has_index) {
    const auto index = read_json_object(index_path, log, true);
    if (index) {
      if (index->contains("metadata") && (*index)["metadata"].is_object()) {
        for (const auto& [key, value] : (*index)["metadata"].items()) {
          facts.index_metadata[key] = value.is_string() ? value.get<std::string>() : value.dump();
          if (key == "total_size" && value.is_number_unsigned()) {
            facts.indexed_bytes = value.get<uint64_t>();
          }
        }
      }
      if (!index->contains("weight_map") || !(*index)["weight_map"].is_object()) {
        log.error("invalid file", index_path.string() + ": weight_map: missing or not an object");
      } else {
        for (const auto& [name, file] : (*index)["weight_map"].items()) {
          if (!file.is_string()) {
            log.error("invalid file", index_path.string() + ": weight_map." + name +
                                          ": expected a shard file name, found " +
                                          json_type_name(file));
            continue;
          }
          weight_map[name] = file.get<std::string>();
          if (std::find(shard_files.begin(), shard_files.end(), weight_map[name]) ==
              shard_files.end()) {
            shard_files.push_back(weight_map[name]);
          }
        }
      }
    }
    std::sort(shard_files.begin(), shard_files.end());
  } else if (fs::exists(dir / kSingleShard)) {
    shard_files.push_back(kSingleShard);
  } else {
    log.error("missing file", dir.string() + ": no " + kIndexFile + " and no " + kSingleShard);
  }

  for (const auto& file : shard_files) {
    ShardFacts shard;
    shard.file = file;
    read_shard(dir, shard, tensors, log);
    if (!shard.present) {
      const auto count = std::count_if(weight_map.begin(), weight_map.end(),
                                       [&](const auto& entry) { return entry.second == file; });
      log.error("missing shard", (dir / file).string() + ": not found, but " + kIndexFile +
                                     " assigns " + std::to_string(count) + " tensors to it");
    }
    facts.shard_file_bytes += shard.file_bytes;
    facts.shards.push_back(shard);
  }

  // The index against the headers: loaders trust the index to find each tensor.
  std::set<std::string> readable_shards;
  for (const auto& shard : facts.shards) {
    if (shard.present) readable_shards.insert(shard.file);
  }
  for (const auto& [name, file] : weight_map) {
    if (!readable_shards.count(file)) continue;
    const auto found = tensors.find(name);
    if (found == tensors.end() || found->second.file != file) {
      log.error("index entry", index_path.string() + ": weight_map." + name + ": not found in " +
                                   file);
    }
  }
  if (facts.has_index) {
    for (const auto& [name, info] : tensors) {
      if (!weight_map.count(name)) {
        log.warning("unindexed tensor", (dir / info.file).string() + ": " + name + ": not in " +
                                            kIndexFile + ", so loaders ignore it");
      }
    }
  }
  for (const auto& file : facts.files) {
    if (ends_with(file, ".safetensors") &&
        std::find(shard_files.begin(), shard_files.end(), file) == shard_files.end()) {
      log.warning("unused file", (dir / file).string() + ": a safetensors file that " +
                                     (facts.has_index ? std::string(kIndexFile) + " does not name"
                                                      : std::string("is not model.safetensors")));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// config.json

void describe_text(const TextConfig& text, TextModelFacts& facts) {
  facts.model_type = text.model_type;
  facts.num_hidden_layers = text.num_hidden_layers;
  for (int layer = 0; layer < text.num_hidden_layers; ++layer) {
    if (text.is_full_attention(layer)) facts.full_attention_layers.push_back(layer);
  }
  facts.num_full_attention_layers = int(facts.full_attention_layers.size());
  facts.num_sliding_attention_layers = text.num_hidden_layers - facts.num_full_attention_layers;
  facts.hidden_size = text.hidden_size;
  facts.intermediate_size = text.intermediate_size;
  facts.num_attention_heads = text.num_attention_heads;
  facts.num_key_value_heads = text.num_key_value_heads;
  facts.head_dim = text.head_dim;
  facts.global_head_dim = text.global_head_dim;
  facts.vocab_size = text.vocab_size;
  facts.sliding_window = text.sliding_window;
  facts.num_kv_shared_layers = text.num_kv_shared_layers;
  facts.hidden_size_per_layer_input = text.hidden_size_per_layer_input;
  facts.max_position_embeddings = text.max_position_embeddings;
  facts.final_logit_softcapping = text.final_logit_softcapping;
}

// The fields that can be read when parse_model_config rejected the config, taken as they are.
void describe_text_leniently(const nlohmann::json& top, TextModelFacts& facts) {
  const nlohmann::json& text =
      top.contains("text_config") && top["text_config"].is_object() ? top["text_config"] : top;
  facts.model_type = json_string(text, "model_type");
  facts.num_hidden_layers = json_int(text, "num_hidden_layers");
  facts.hidden_size = json_int(text, "hidden_size");
  facts.intermediate_size = json_int(text, "intermediate_size");
  facts.num_attention_heads = json_int(text, "num_attention_heads");
  facts.num_key_value_heads = json_int(text, "num_key_value_heads");
  facts.head_dim = json_int(text, "head_dim");
  facts.global_head_dim = json_int(text, "global_head_dim");
  facts.vocab_size = json_int(text, "vocab_size");
  facts.sliding_window = json_int(text, "sliding_window");
  facts.num_kv_shared_layers = json_int(text, "num_kv_shared_layers");
  facts.hidden_size_per_layer_input = json_int(text, "hidden_size_per_layer_input");
  facts.max_position_embeddings = json_int(text, "max_position_embeddings");
  if (text.contains("layer_types") && text["layer_types"].is_array()) {
    const auto& types = text["layer_types"];
    for (size_t layer = 0; layer < types.size(); ++layer) {
      if (types[layer] == "full_attention") facts.full_attention_layers.push_back(int(layer));
      if (types[layer] == "sliding_attention") ++facts.num_sliding_attention_layers;
    }
    facts.num_full_attention_layers = int(facts.full_attention_layers.size());
  }
}

std::string describe_spec(const std::optional<QuantSpec>& spec) {
  if (!spec) return "not quantized";
  return spec->mode + ", " + std::to_string(spec->bits) + " bits, group " +
         std::to_string(spec->group_size);
}

// ---------------------------------------------------------------------------------------------
// Tensors against the config

// The layout rule of detect_layout, on names only, so that it works without mapped shards.
std::optional<BundleLayout> detect_layout_from_names(const std::map<std::string, TensorInfo>& tensors,
                                                     const ModelConfig& config, const fs::path& dir,
                                                     FindingLog& log) {
  bool gemma4_names = false;
  bool mlx_lm_names = false;
  for (const auto& [name, info] : tensors) {
    if (starts_with(name, "model.language_model.")) {
      log.error("layout", dir.string() + ": " + name +
                              ": Hugging Face checkpoint names; convert the checkpoint to an MLX "
                              "bundle first (mxgemma convert)");
      return std::nullopt;
    }
    gemma4_names = gemma4_names || starts_with(name, "language_model.model.");
    mlx_lm_names = mlx_lm_names || starts_with(name, "model.layers.");
  }
  if (gemma4_names == mlx_lm_names) {
    log.error("layout", dir.string() + ": tensor names match no known layout (expected either "
                                       "language_model.model.* or model.layers.*, not both)");
    return std::nullopt;
  }
  if (mlx_lm_names) return BundleLayout::mlx_lm;
  const auto conv = tensors.find("audio_tower.subsample_conv_projection.layer0.conv.weight");
  if (conv != tensors.end() && conv->second.shape.size() == 4) {
    // Input channels are 1: PyTorch puts them at dim 1, MLX at dim 3.
    if (conv->second.shape[1] == 1 && conv->second.shape[3] != 1) return BundleLayout::hf_names;
    if (conv->second.shape[3] == 1 && conv->second.shape[1] != 1) return BundleLayout::mlx_vlm;
  }
  return config.has_quantization_config ? BundleLayout::mlx_vlm : BundleLayout::hf_names;
}

bool is_float_dtype(const std::string& dtype) {
  return dtype == "F32" || dtype == "F16" || dtype == "BF16";
}

// Checks each tensor of the table like Bundle::open does, recording every problem.
class TableChecker {
 public:
  TableChecker(const fs::path& dir, const std::map<std::string, TensorInfo>& tensors,
               const QuantizationConfig& quantization, FindingLog& log)
      : dir_(dir), tensors_(tensors), quantization_(quantization), log_(log) {}

  void check(const TensorSpec& spec) {
    switch (spec.kind) {
      case TensorKind::linear:
        check_linear(spec);
        break;
      case TensorKind::dense:
        if (const TensorInfo* tensor = lookup(spec.name, spec)) {
          expect_float(spec.name, *tensor);
          expect_shape(spec.name, *tensor, spec.shape);
        }
        break;
      case TensorKind::scalar:
        if (const TensorInfo* tensor = lookup(spec.name, spec)) {
          expect_float(spec.name, *tensor);
          int64_t numel = 1;
          for (int64_t dim : tensor->shape) numel *= dim;
          if (numel != 1) {
            problem(spec.name, *tensor, "expected one value (shape [] or [1]), found shape " +
                                            shape_of(tensor->shape));
          }
        }
        break;
    }
  }

  const std::set<std::string>& used() const { return used_; }

 private:
  const TensorInfo* find(const std::string& name) const {
    const auto found = tensors_.find(name);
    return found == tensors_.end() ? nullptr : &found->second;
  }

  const TensorInfo* lookup(const std::string& name, const TensorSpec& spec) {
    const TensorInfo* tensor = find(name);
    if (tensor == nullptr && spec.required) {
      log_.error("missing tensor", dir_.string() + ": missing tensor " + name + " (required by " +
                                       spec.required_by + ")");
    }
    if (tensor != nullptr) used_.insert(name);
    return tensor;
  }

  void problem(const std::string& name, const TensorInfo& tensor, const std::string& text) {
    log_.error("tensor mismatch", (dir_ / tensor.file).string() + ": " + name + ": " + text);
  }

  void expect_shape(const std::string& name, const TensorInfo& tensor,
                    const std::vector<int64_t>& shape) {
    if (tensor.shape != shape) {
      problem(name, tensor, "expected shape " + shape_of(shape) + ", found " + shape_of(tensor.shape));
    }
  }

  void expect_float(const std::string& name, const TensorInfo& tensor) {
    if (!is_float_dtype(tensor.dtype)) {
      problem(name, tensor, "expected dtype F16, BF16 or F32, found " + tensor.dtype);
    }
  }

  void expect_dtype(const std::string& name, const TensorInfo& tensor, const std::string& dtype) {
    if (supported_dtype(tensor.dtype) != dtype) {
      problem(name, tensor, "expected dtype " + dtype + ", found " + tensor.dtype);
    }
  }

  void check_linear(const TensorSpec& spec) {
    const std::string weight_name = spec.name + ".weight";
    const std::string scales_name = spec.name + ".scales";
    const TensorInfo* scales = find(scales_name);
    const TensorInfo* weight = lookup(weight_name, spec);
    if (weight == nullptr) return;

    if (scales == nullptr) {
      if (weight->dtype == "U32" && quantization_.present) {
        // A packed weight that lost its scales cannot be dequantized.
        log_.error("missing scales", (dir_ / weight->file).string() + ": " + weight_name +
                                         ": packed U32 weight without " + scales_name +
                                         " (config.json " + quantization_.key + ": " +
                                         describe_spec(quantization_.spec_for(spec.name)) + ")");
        return;
      }
      // mlx-vlm quantizes a module that has its own override entry, and then finds no scales.
      const auto override_entry = quantization_.overrides.find(spec.name);
      if (override_entry != quantization_.overrides.end() && override_entry->second) {
        problem(weight_name, *weight, "config.json " + quantization_.key + "." + spec.name +
                                          " sets " + describe_spec(override_entry->second) +
                                          ", but " + scales_name + " is missing");
      }
      expect_float(weight_name, *weight);
      expect_shape(weight_name, *weight, spec.shape);
      if (const TensorInfo* biases = find(spec.name + ".biases")) {
        problem(spec.name + ".biases", *biases, "quantization biases without .scales");
      }
      return;
    }
    used_.insert(scales_name);
    check_quantized(spec, weight_name, *weight, *scales);
  }

  void check_quantized(const TensorSpec& spec, const std::string& weight_name,
                       const TensorInfo& weight, const TensorInfo& scales) {
    const std::string scales_name = spec.name + ".scales";
    if (!quantization_.present) {
      problem(scales_name, scales, "quantized weight, but config.json has no quantization block");
      return;
    }
    const std::optional<QuantSpec> quant = quantization_.spec_for(spec.name);
    if (!quant) {
      problem(scales_name, scales, "quantized weight, but config.json " + quantization_.key +
                                       "." + spec.name + " is false");
      return;
    }
    const int64_t out = spec.shape[0];
    const int64_t in = spec.shape[1];
    if (in % quant->group_size != 0 || (in * quant->bits) % 32 != 0) {
      problem(weight_name, weight, "input size " + std::to_string(in) +
                                       " is not a multiple of group_size " +
                                       std::to_string(quant->group_size));
      return;
    }
    expect_dtype(weight_name, weight, "U32");
    expect_shape(weight_name, weight, {out, in * quant->bits / 32});

    const std::vector<int64_t> scale_shape = {out, in / quant->group_size};
    const std::string biases_name = spec.name + ".biases";
    const TensorInfo* biases = find(biases_name);
    if (quant->mode == "mxfp4") {
      expect_dtype(scales_name, scales, "U8");
      expect_shape(scales_name, scales, scale_shape);
      if (biases != nullptr) problem(biases_name, *biases, "mxfp4 weights have no biases");
      return;
    }
    expect_float(scales_name, scales);
    expect_shape(scales_name, scales, scale_shape);
    if (biases == nullptr) {
      log_.error("missing tensor", dir_.string() + ": missing tensor " + biases_name +
                                       " (affine quantization stores a bias per group)");
      return;
    }
    used_.insert(biases_name);
    expect_dtype(biases_name, *biases, supported_dtype(scales.dtype));
    expect_shape(biases_name, *biases, scale_shape);
  }

  const fs::path& dir_;
  const std::map<std::string, TensorInfo>& tensors_;
  const QuantizationConfig& quantization_;
  FindingLog& log_;
  std::set<std::string> used_;
};

// Counts quantized weights with their sidecars and the other tensors by dtype.
void count_tensors(const fs::path& dir, const std::map<std::string, TensorInfo>& tensors,
                   TensorCountFacts& counts, FindingLog& log) {
  std::set<std::string> sidecar_parts;
  for (const auto& [name, info] : tensors) {
    if (!ends_with(name, ".scales")) continue;
    const std::string module = name.substr(0, name.size() - std::strlen(".scales"));
    const auto weight = tensors.find(module + ".weight");
    if (weight == tensors.end()) {
      log.error("orphan scales", (dir / info.file).string() + ": " + name + ": no " + module +
                                     ".weight beside it");
      continue;
    }
    ++counts.quantized;
    ++counts.scales;
    sidecar_parts.insert(name);
    sidecar_parts.insert(weight->first);
    if (tensors.count(module + ".biases")) {
      ++counts.biases;
      sidecar_parts.insert(module + ".biases");
    }
  }
  counts.total = int(tensors.size());
  for (const auto& [name, info] : tensors) {
    if (sidecar_parts.count(name)) {
      counts.quantized_bytes += info.nbytes;
    } else {
      counts.unquantized_bytes += info.nbytes;
      ++counts.by_dtype[info.dtype];
    }
  }
}

// Warns about a 16-bit weight among quantized ones of the same kind ("layers.*.mlp.up_proj"),
// which usually means a converter skipped it by mistake.
void check_quantization_consistency(const fs::path& dir,
                                    const std::map<std::string, TensorInfo>& tensors,
                                    const std::vector<TensorSpec>& table, FindingLog& log) {
  static const std::regex layer_index(R"(\.\d+\.)");
  std::map<std::string, std::pair<int, int>> kinds;  // pattern -> (quantized, dense)
  for (const auto& spec : table) {
    if (spec.kind != TensorKind::linear || !tensors.count(spec.name + ".weight")) continue;
    auto& [quantized, dense] = kinds[std::regex_replace(spec.name, layer_index, ".*.")];
    (tensors.count(spec.name + ".scales") ? quantized : dense) += 1;
  }
  for (const auto& spec : table) {
    if (spec.kind != TensorKind::linear) continue;
    const auto weight = tensors.find(spec.name + ".weight");
    if (weight == tensors.end() || tensors.count(spec.name + ".scales")) continue;
    if (!is_float_dtype(weight->second.dtype)) continue;
    const auto& [quantized, dense] = kinds[std::regex_replace(spec.name, layer_index, ".*.")];
    if (quantized > 0) {
      log.warning("unquantized weight", (dir / weight->second.file).string() + ": " + weight->first +
                                            ": " + weight->second.dtype + " without .scales, but " +
                                            std::to_string(quantized) +
                                            " other weights of this kind are quantized");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer, template, processor, generation

std::string token_string(const nlohmann::json& config, const std::string& key) {
  if (!config.is_object() || !config.contains(key)) return "";
  const auto& value = config[key];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object()) return json_string(value, "content");
  return "";
}

void describe_tokenizer(const fs::path& dir, const std::optional<nlohmann::json>& tokenizer_config,
                        TokenizerFacts& facts, FindingLog& log) {
  const fs::path path = dir / "tokenizer.json";
  const auto tokenizer = read_json_object(path, log, true);
  if (tokenizer) {
    facts.present = true;
    int64_t max_id = -1;
    if (tokenizer->contains("model") && (*tokenizer)["model"].is_object()) {
      const auto& model = (*tokenizer)["model"];
      facts.model_type = json_string(model, "type");
      const auto vocab = model.find("vocab");
      if (vocab != model.end() && vocab->is_object()) {
        for (const auto& [token, id] : vocab->items()) {
          if (id.is_number_integer()) max_id = std::max<int64_t>(max_id, id.get<int64_t>());
        }
      } else if (vocab != model.end() && vocab->is_array()) {
        max_id = int64_t(vocab->size()) - 1;  // Unigram: [token, score] pairs, id = position
      } else {
        log.error("invalid file", path.string() + ": model.vocab: missing");
      }
    } else {
      log.error("invalid file", path.string() + ": model: missing or not an object");
    }
    if (tokenizer->contains("added_tokens") && (*tokenizer)["added_tokens"].is_array()) {
      for (const auto& token : (*tokenizer)["added_tokens"]) {
        ++facts.num_added_tokens;
        if (token.is_object() && token.value("special", false)) ++facts.num_special_tokens;
        if (token.is_object() && token.contains("id") && token["id"].is_number_integer()) {
          max_id = std::max<int64_t>(max_id, token["id"].get<int64_t>());
        }
      }
    }
    facts.vocab_size = int(max_id + 1);
  }
  if (tokenizer_config) {
    facts.bos_token = token_string(*tokenizer_config, "bos_token");
    facts.eos_token = token_string(*tokenizer_config, "eos_token");
    facts.pad_token = token_string(*tokenizer_config, "pad_token");
    facts.add_bos_token = tokenizer_config->value("add_bos_token", false);
  }
}

// The default template text and where it comes from, as Bundle::open picks it.
void describe_template(const fs::path& dir, const std::optional<nlohmann::json>& tokenizer_config,
                       TemplateFacts& facts, FindingLog& log) {
  std::string text;
  nlohmann::json value;
  if (fs::exists(dir / "chat_template.jinja")) {
    facts.source = "chat_template.jinja";
    try {
      text = read_text_file(dir / "chat_template.jinja");
    } catch (const std::exception& error) {
      log.error("invalid file", error.what());
    }
  } else if (fs::exists(dir / "chat_template.json")) {
    facts.source = "chat_template.json";
    if (auto json = read_json_object(dir / "chat_template.json", log, true)) {
      value = json->value("chat_template", nlohmann::json());
    }
  } else if (tokenizer_config && tokenizer_config->contains("chat_template")) {
    facts.source = "tokenizer_config.json";
    value = (*tokenizer_config)["chat_template"];
  }
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_array()) {
    for (const auto& entry : value) {
      const std::string name = json_string(entry, "name");
      facts.named_templates.push_back(name);
      if (name == "default") text = json_string(entry, "template");
    }
  } else if (!value.is_null()) {
    log.error("invalid file", (dir / facts.source).string() +
                                  ": chat_template: expected a string or a list of "
                                  "{\"name\", \"template\"}, found " + json_type_name(value));
  }
  if (facts.source.empty()) {
    log.warning("missing file", (dir / "chat_template.jinja").string() +
                                    ": not found, and no chat_template in tokenizer_config.json; "
                                    "prompts need --raw or --chat-template");
    return;
  }
  facts.present = !text.empty();
  facts.size_bytes = text.size();
  // Gemma 4 templates read `tools` and emit <|tool_call>; Gemma 3 ones have neither. Thinking is
  // switched by `enable_thinking` and written in the <|channel> thought channel.
  static const std::regex tools_variable(R"(\btools\b)");
  facts.supports_tools = std::regex_search(text, tools_variable) ||
                         text.find("<|tool_call>") != std::string::npos;
  facts.supports_thinking = text.find("enable_thinking") != std::string::npos ||
                            text.find("<|channel>") != std::string::npos;
}

// Scalars and lists of scalars of a JSON object under dotted keys, values as JSON text.
void flatten_json(const nlohmann::json& object, const std::string& prefix,
                  std::map<std::string, std::string>& out) {
  for (const auto& [key, value] : object.items()) {
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    if (value.is_object()) {
      flatten_json(value, path, out);
    } else if (!value.is_array() || std::none_of(value.begin(), value.end(), [](const auto& item) {
                 return item.is_structured();
               })) {
      out[path] = value.dump();
    }
  }
}

bool json_flag(const std::optional<nlohmann::json>& object, const std::string& group,
               const std::string& key) {
  if (!object || !object->contains(group) || !(*object)[group].is_object()) return false;
  const auto& value = (*object)[group];
  return value.contains(key) && value[key].is_boolean() && value[key].get<bool>();
}

void describe_modalities(const std::optional<nlohmann::json>& config,
                         const std::optional<nlohmann::json>& jang, bool text_runs,
                         BundleFacts& facts) {
  const auto has_config = [&](const char* key) {
    return config && config->contains(key) && (*config)[key].is_object();
  };
  const bool video = has_config("video_config") || json_flag(jang, "modalities", "video");
  const std::vector<std::pair<std::string, bool>> present = {
      {"text", true},
      {"vision", has_config("vision_config")},
      {"audio", has_config("audio_config")},
      {"video", video}};
  for (const auto& [name, is_present] : present) {
    ModalityFacts modality;
    modality.name = name;
    modality.present = is_present;
    if (!is_present) {
      modality.status = "absent";
    } else if (name == "text" && text_runs) {
      modality.status = "runs";
    } else if (name == "text") {
      modality.status = "not loadable";
    } else if (name == "video") {
      // Video frames would go through the vision tower, but no video input is built.
      modality.status = "loaded, no video input";
    } else {
      modality.status = "runs";
    }
    facts.modalities.push_back(modality);
  }
}

void describe_sources(const nlohmann::json& config, const std::optional<nlohmann::json>& jang,
                      BundleFacts& facts) {
  facts.name_or_path = json_string(config, "_name_or_path");
  facts.model_type = json_string(config, "model_type");
  if (config.contains("architectures") && config["architectures"].is_array()) {
    for (const auto& name : config["architectures"]) {
      if (name.is_string()) facts.architectures.push_back(name.get<std::string>());
    }
  }
  if (jang && jang->contains("source_model")) {
    const auto& source = (*jang)["source_model"];
    facts.source_model = source.is_string() ? source.get<std::string>() : json_string(source, "name");
    facts.source_architecture = json_string(source, "architecture");
  }
  if (jang && jang->contains("runtime") && (*jang)["runtime"].is_object()) {
    const auto& runtime = (*jang)["runtime"];
    if (runtime.contains("total_weight_bytes") && runtime["total_weight_bytes"].is_number_unsigned()) {
      facts.jang_total_weight_bytes = runtime["total_weight_bytes"].get<uint64_t>();
    }
  }
}

void describe_quantization(const QuantizationConfig& quantization, QuantizationFacts& facts) {
  facts.present = quantization.present;
  if (!quantization.present) return;
  facts.key = quantization.key;
  facts.mode = quantization.base.mode;
  facts.bits = quantization.base.bits;
  facts.group_size = quantization.base.group_size;
  for (const auto& [module, spec] : quantization.overrides) {
    facts.overrides[module] = describe_spec(spec);
  }
}

void describe_generation(const fs::path& dir, BundleFacts& facts, FindingLog& log) {
  const auto generation = read_json_object(dir / "generation_config.json", log, false);
  if (!generation) return;
  for (const char* key : {"bos_token_id", "eos_token_id", "pad_token_id", "do_sample",
                          "temperature", "top_k", "top_p", "min_p"}) {
    if (generation->contains(key)) facts.generation[key] = (*generation)[key].dump();
  }
}

std::vector<std::string> list_files(const fs::path& dir) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Checks the tensors against the table that the parsed config implies.
void check_tensors_against_config(const ModelConfig& config,
                                  const std::map<std::string, TensorInfo>& tensors,
                                  BundleFacts& facts, FindingLog& log) {
  if (tensors.empty()) {
    const bool any_shard = std::any_of(facts.shards.begin(), facts.shards.end(),
                                       [](const ShardFacts& shard) { return shard.present; });
    if (any_shard) log.error("no tensors", facts.dir.string() + ": the shards contain no tensors");
    return;
  }
  const auto layout = detect_layout_from_names(tensors, config, facts.dir, log);
  if (!layout) return;
  facts.layout = layout_name(*layout);
  const std::vector<TensorSpec> table = model_tensor_table(config, *layout);

  TableChecker checker(facts.dir, tensors, config.quantization, log);
  for (const auto& spec : table) checker.check(spec);
  check_quantization_consistency(facts.dir, tensors, table, log);

  std::vector<std::string> unused;
  for (const auto& [name, info] : tensors) {
    if (!checker.used().count(name)) unused.push_back(name);
  }
  if (!unused.empty()) {
    log.warning("unused tensors", facts.dir.string() + ": " + std::to_string(unused.size()) +
                                      " tensors that the model does not read, e.g. " +
                                      unused.front());
  }
}

// Opens the bundle as the runtime does when no finding is an error, so a problem the checks above
// miss still makes the bundle inconsistent.
void confirm_with_loader(const fs::path& dir, BundleFacts& facts) {
  try {
    Bundle::open(dir);
  } catch (const std::exception& error) {
    facts.findings.push_back({FindingSeverity::error, std::string("loading failed: ") + error.what()});
  }
}

}  // namespace

bool BundleFacts::has_errors() const {
  return std::any_of(findings.begin(), findings.end(), [](const BundleFinding& finding) {
    return finding.severity == FindingSeverity::error;
  });
}

BundleFacts describe_bundle(const fs::path& dir) {
  if (!fs::is_directory(dir)) {
    throw std::runtime_error(dir.string() + (fs::exists(dir) ? ": not a folder" : ": not found"));
  }
  BundleFacts facts;
  facts.dir = dir;
  facts.files = list_files(dir);
  FindingLog log;

  const fs::path config_path = dir / "config.json";
  const auto config_json = read_json_object(config_path, log, true);
  const auto jang = read_json_object(dir / "jang_config.json", log, false);
  const auto tokenizer_config = read_json_object(dir / "tokenizer_config.json", log, false);
  const auto processor = read_json_object(dir / "processor_config.json", log, false);

  std::optional<ModelConfig> config;
  if (config_json) {
    describe_sources(*config_json, jang, facts);
    try {
      config = parse_model_config(config_path);
    } catch (const std::exception& error) {
      log.error("config", error.what());
    }
  }
  if (config) {
    describe_text(config->text, facts.text);
    describe_quantization(config->quantization, facts.quantization);
  } else if (config_json) {
    describe_text_leniently(*config_json, facts.text);
  }

  std::map<std::string, TensorInfo> tensors;
  read_weights(dir, facts, tensors, log);
  count_tensors(dir, tensors, facts.tensors, log);
  if (config) check_tensors_against_config(*config, tensors, facts, log);

  if (processor) flatten_json(*processor, "", facts.processor);
  describe_tokenizer(dir, tokenizer_config, facts.tokenizer, log);
  if (config && facts.tokenizer.vocab_size > config->text.vocab_size) {
    // Gemma 3 tokenizers put <image_soft_token> at id 262144, one past the embedding rows of
    // some bundles that load and run, so this is a warning.
    log.warning("tokenizer", (dir / "tokenizer.json").string() + ": token ids reach " +
                                 std::to_string(facts.tokenizer.vocab_size - 1) +
                                 ", past the embedding rows (config.json vocab_size " +
                                 std::to_string(config->text.vocab_size) + ")");
  }
  describe_template(dir, tokenizer_config, facts.chat_template, log);
  describe_generation(dir, facts, log);

  facts.findings = log.finish();
  if (!facts.has_errors()) confirm_with_loader(dir, facts);
  describe_modalities(config_json, jang, config.has_value() && !facts.has_errors(), facts);
  return facts;
}

// ---------------------------------------------------------------------------------------------
// Rendering

namespace {

// "3.73 GiB", "1.66 MiB": two decimals in the largest binary unit that keeps the value >= 1.
std::string format_size(uint64_t bytes) {
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double value = double(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  std::ostringstream text;
  if (unit == 0) {
    text << bytes << " bytes";
  } else {
    text << std::fixed << std::setprecision(2) << value << " " << units[unit];
  }
  return text.str();
}

std::string format_byte_count(uint64_t bytes) {
  return std::to_string(bytes) + " bytes (" + format_size(bytes) + ")";
}

std::string join_ints(const std::vector<int>& values) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + std::to_string(values[i]);
  return text;
}

std::string unquote(const std::string& json_text) {
  if (json_text.size() >= 2 && json_text.front() == '"' && json_text.back() == '"') {
    return json_text.substr(1, json_text.size() - 2);
  }
  return json_text;
}

std::string yes_no(bool value) { return value ? "yes" : "no"; }

// The processor fields the card shows, by the first of their dotted keys that is present.
struct ProcessorRow {
  const char* label;
  std::vector<const char*> keys;
};

const std::vector<ProcessorRow>& processor_rows() {
  static const std::vector<ProcessorRow> rows = {
      {"Image soft tokens", {"image_seq_length", "image_processor.max_soft_tokens"}},
      {"Image patch size", {"image_processor.patch_size", "patch_size"}},
      {"Image pooling kernel", {"image_processor.pooling_kernel_size", "pooling_kernel_size"}},
      {"Audio ms per token", {"audio_ms_per_token"}},
      {"Audio soft tokens", {"audio_seq_length"}},
      {"Audio sampling rate", {"feature_extractor.sampling_rate", "sampling_rate"}},
      {"Audio mel bins", {"feature_extractor.feature_size"}},
      {"Video soft tokens", {"video_processor.max_soft_tokens"}},
      {"Video frames", {"video_processor.num_frames"}},
  };
  return rows;
}

using CardRows = std::vector<std::pair<std::string, std::string>>;

void add_architecture_rows(const BundleFacts& facts, CardRows& rows) {
  const TextModelFacts& text = facts.text;
  std::string architecture = facts.model_type.empty() ? "unknown" : facts.model_type;
  if (!facts.architectures.empty()) architecture += " (" + facts.architectures.front() + ")";
  if (!text.model_type.empty() && text.model_type != facts.model_type) {
    architecture += ", text " + text.model_type;
  }
  rows.emplace_back("Architecture", architecture);
  if (!facts.layout.empty()) rows.emplace_back("Tensor layout", facts.layout);

  std::string layers = std::to_string(text.num_hidden_layers) + " (" +
                       std::to_string(text.num_sliding_attention_layers) + " sliding, " +
                       std::to_string(text.num_full_attention_layers) + " full";
  if (!text.full_attention_layers.empty()) {
    layers += " at " + join_ints(text.full_attention_layers);
  }
  rows.emplace_back("Text layers", layers + ")");
  rows.emplace_back("Hidden size", std::to_string(text.hidden_size));
  rows.emplace_back("Intermediate size", std::to_string(text.intermediate_size));
  std::string heads = std::to_string(text.num_attention_heads) + " query, " +
                      std::to_string(text.num_key_value_heads) + " KV, head dim " +
                      std::to_string(text.head_dim);
  if (text.global_head_dim > 0 && text.global_head_dim != text.head_dim) {
    heads += " (full layers " + std::to_string(text.global_head_dim) + ")";
  }
  rows.emplace_back("Attention heads", heads);
  rows.emplace_back("Sliding window", std::to_string(text.sliding_window));
  rows.emplace_back("KV-shared layers", std::to_string(text.num_kv_shared_layers));
  if (text.hidden_size_per_layer_input > 0) {
    rows.emplace_back("Per-layer input size", std::to_string(text.hidden_size_per_layer_input));
  }
  rows.emplace_back("Vocabulary", std::to_string(text.vocab_size));
  if (text.max_position_embeddings > 0) {
    rows.emplace_back("Max positions", std::to_string(text.max_position_embeddings));
  }
}

void add_weight_rows(const BundleFacts& facts, CardRows& rows) {
  const QuantizationFacts& quantization = facts.quantization;
  std::string quant = "none";
  if (quantization.present) {
    quant = quantization.mode + ", " + std::to_string(quantization.bits) + " bits, group " +
            std::to_string(quantization.group_size) + " (config.json " + quantization.key + ")";
    if (!quantization.overrides.empty()) {
      quant += ", " + std::to_string(quantization.overrides.size()) + " per-module overrides";
    }
  }
  rows.emplace_back("Quantization", quant);

  const TensorCountFacts& tensors = facts.tensors;
  std::string quantized = std::to_string(tensors.quantized) + " weights with " +
                          std::to_string(tensors.scales) + " .scales";
  if (tensors.biases > 0) quantized += " and " + std::to_string(tensors.biases) + " .biases";
  rows.emplace_back("Quantized tensors", quantized + " sidecars");
  std::string others;
  for (const auto& [dtype, count] : tensors.by_dtype) {
    others += (others.empty() ? "" : ", ") + std::to_string(count) + " " + dtype;
  }
  rows.emplace_back("Other tensors", others.empty() ? "none" : others);
  rows.emplace_back("Tensors", std::to_string(tensors.total));

  int present = 0;
  for (const auto& shard : facts.shards) present += shard.present ? 1 : 0;
  std::string shards = std::to_string(facts.shards.size());
  if (present != int(facts.shards.size())) shards += " (" + std::to_string(present) + " present)";
  shards += facts.has_index ? ", with model.safetensors.index.json" : ", no index";
  rows.emplace_back("Shards", shards);
  if (facts.indexed_bytes) rows.emplace_back("Indexed weight bytes", format_byte_count(*facts.indexed_bytes));
  rows.emplace_back("Shard file bytes", format_byte_count(facts.shard_file_bytes));
  rows.emplace_back("Tensor bytes", format_byte_count(tensors.quantized_bytes + tensors.unquantized_bytes) +
                                        ", quantized " + format_size(tensors.quantized_bytes));
}

void add_processor_rows(const BundleFacts& facts, CardRows& rows) {
  for (const auto& row : processor_rows()) {
    for (const char* key : row.keys) {
      const auto found = facts.processor.find(key);
      if (found != facts.processor.end()) {
        rows.emplace_back(row.label, unquote(found->second));
        break;
      }
    }
  }
}

void add_text_rows(const BundleFacts& facts, CardRows& rows) {
  std::string modalities;
  for (const auto& modality : facts.modalities) {
    modalities += (modalities.empty() ? "" : "; ") + modality.name + ": " + modality.status;
  }
  rows.emplace_back("Modalities", modalities);

  const TokenizerFacts& tokenizer = facts.tokenizer;
  if (tokenizer.present) {
    rows.emplace_back("Tokenizer", tokenizer.model_type + ", " + std::to_string(tokenizer.vocab_size) +
                                       " ids, " + std::to_string(tokenizer.num_added_tokens) +
                                       " added tokens (" + std::to_string(tokenizer.num_special_tokens) +
                                       " special)");
    rows.emplace_back("Special tokens", "bos " + tokenizer.bos_token + ", eos " + tokenizer.eos_token +
                                            ", pad " + tokenizer.pad_token + ", add_bos_token " +
                                            yes_no(tokenizer.add_bos_token));
  } else {
    rows.emplace_back("Tokenizer", "missing");
  }
  const TemplateFacts& chat_template = facts.chat_template;
  if (chat_template.present) {
    rows.emplace_back("Chat template", chat_template.source + ", " +
                                           std::to_string(chat_template.size_bytes) + " bytes, tools " +
                                           yes_no(chat_template.supports_tools) + ", thinking " +
                                           yes_no(chat_template.supports_thinking));
  } else {
    rows.emplace_back("Chat template", "none");
  }
  const auto eos = facts.generation.find("eos_token_id");
  if (eos != facts.generation.end()) {
    const nlohmann::json ids = nlohmann::json::parse(eos->second);
    std::string text;
    for (const auto& id : ids.is_array() ? ids : nlohmann::json::array({ids})) {
      text += (text.empty() ? "" : ", ") + id.dump();
    }
    rows.emplace_back("Stop token ids", text);
  }
}

CardRows card_rows(const BundleFacts& facts) {
  CardRows rows;
  rows.emplace_back("Bundle", facts.dir.string());
  if (!facts.source_model.empty()) {
    rows.emplace_back("Source model", facts.source_model +
                                          (facts.source_architecture.empty()
                                               ? ""
                                               : " (" + facts.source_architecture + ")"));
  }
  if (!facts.name_or_path.empty()) rows.emplace_back("Name or path", facts.name_or_path);
  add_architecture_rows(facts, rows);
  add_weight_rows(facts, rows);
  add_processor_rows(facts, rows);
  add_text_rows(facts, rows);
  return rows;
}

const char* severity_name(FindingSeverity severity) {
  return severity == FindingSeverity::error ? "error" : "warning";
}

// A table cell cannot hold a bare "|", and renderers take "<bos>" for an HTML tag.
std::string escape_cell(const std::string& text) {
  std::string escaped;
  for (char c : text) {
    if (c == '<') {
      escaped += "&lt;";
    } else if (c == '>') {
      escaped += "&gt;";
    } else {
      if (c == '|') escaped += '\\';
      escaped += c;
    }
  }
  return escaped;
}

}  // namespace

std::string bundle_facts_text(const BundleFacts& facts) {
  const CardRows rows = card_rows(facts);
  size_t width = 0;
  for (const auto& row : rows) width = std::max(width, row.first.size());
  std::ostringstream text;
  for (const auto& [label, value] : rows) {
    text << label << std::string(width + 2 - label.size(), ' ') << value << "\n";
  }
  if (facts.findings.empty()) {
    text << "\nNo findings: the bundle is consistent.\n";
  } else {
    text << "\nFindings:\n";
    for (const auto& finding : facts.findings) {
      text << "  " << severity_name(finding.severity) << ": " << finding.message << "\n";
    }
  }
  return text.str();
}

std::string model_card_markdown(const BundleFacts& facts) {
  const std::string name = facts.dir.filename().empty() ? facts.dir.parent_path().filename().string()
                                                        : facts.dir.filename().string();
  std::ostringstream card;
  card << "---\nlibrary_name: mlx\ntags:\n- mlx\n- mxgemma\n";
  if (!facts.quantization.mode.empty()) card << "- " << facts.quantization.mode << "\n";
  card << "---\n\n# " << name << "\n\n";
  card << "An MLX bundle of a " << (facts.model_type.empty() ? "model" : facts.model_type)
       << " model";
  if (facts.quantization.present) {
    card << " with " << facts.quantization.mode << " " << facts.quantization.bits
         << "-bit weights (group size " << facts.quantization.group_size << ")";
  }
  card << ". The table below was written by `mxgemma inspect`.\n\n";

  card << "| Field | Value |\n| --- | --- |\n";
  for (const auto& [label, value] : card_rows(facts)) {
    if (label == "Bundle") continue;  // a local path means nothing to the card's readers
    card << "| " << escape_cell(label) << " | " << escape_cell(value) << " |\n";
  }

  if (!facts.findings.empty()) {
    card << "\n## Findings\n\n";
    for (const auto& finding : facts.findings) {
      card << "- " << severity_name(finding.severity) << ": " << finding.message << "\n";
    }
  }

  card << "\n## Run with mxgemma\n\n```sh\n"
       << "mxgemma inspect " << name << "\n"
       << "mxgemma run -m " << name << " -p \"What is the capital of France?\"\n"
       << "mxgemma chat -m " << name << "\n```\n";
  return card.str();
}

nlohmann::ordered_json bundle_facts_json(const BundleFacts& facts) {
  using Json = nlohmann::ordered_json;
  Json json;
  json["bundle"] = facts.dir.string();
  json["files"] = facts.files;
  json["source"] = {{"name_or_path", facts.name_or_path},
                    {"source_model", facts.source_model},
                    {"source_architecture", facts.source_architecture}};
  json["model_type"] = facts.model_type;
  json["architectures"] = facts.architectures;
  json["layout"] = facts.layout;

  const TextModelFacts& text = facts.text;
  json["text"] = {{"model_type", text.model_type},
                  {"num_hidden_layers", text.num_hidden_layers},
                  {"num_sliding_attention_layers", text.num_sliding_attention_layers},
                  {"num_full_attention_layers", text.num_full_attention_layers},
                  {"full_attention_layers", text.full_attention_layers},
                  {"hidden_size", text.hidden_size},
                  {"intermediate_size", text.intermediate_size},
                  {"num_attention_heads", text.num_attention_heads},
                  {"num_key_value_heads", text.num_key_value_heads},
                  {"head_dim", text.head_dim},
                  {"global_head_dim", text.global_head_dim},
                  {"vocab_size", text.vocab_size},
                  {"sliding_window", text.sliding_window},
                  {"num_kv_shared_layers", text.num_kv_shared_layers},
                  {"hidden_size_per_layer_input", text.hidden_size_per_layer_input},
                  {"max_position_embeddings", text.max_position_embeddings},
                  {"final_logit_softcapping", text.final_logit_softcapping}};

  const QuantizationFacts& quantization = facts.quantization;
  json["quantization"] = quantization.present
                             ? Json{{"key", quantization.key},
                                    {"mode", quantization.mode},
                                    {"bits", quantization.bits},
                                    {"group_size", quantization.group_size},
                                    {"overrides", quantization.overrides}}
                             : Json(nullptr);

  const TensorCountFacts& tensors = facts.tensors;
  json["tensors"] = {{"total", tensors.total},
                     {"quantized", tensors.quantized},
                     {"scales", tensors.scales},
                     {"biases", tensors.biases},
                     {"other_by_dtype", tensors.by_dtype},
                     {"quantized_bytes", tensors.quantized_bytes},
                     {"unquantized_bytes", tensors.unquantized_bytes}};

  Json shards = Json::array();
  for (const auto& shard : facts.shards) {
    shards.push_back({{"file", shard.file},
                      {"present", shard.present},
                      {"file_bytes", shard.file_bytes},
                      {"data_bytes", shard.data_bytes},
                      {"num_tensors", shard.num_tensors}});
  }
  json["shards"] = shards;
  json["has_index"] = facts.has_index;
  json["indexed_bytes"] = facts.indexed_bytes ? Json(*facts.indexed_bytes) : Json(nullptr);
  json["shard_file_bytes"] = facts.shard_file_bytes;
  json["index_metadata"] = facts.index_metadata;
  json["jang_total_weight_bytes"] =
      facts.jang_total_weight_bytes ? Json(*facts.jang_total_weight_bytes) : Json(nullptr);

  Json processor = Json::object();
  for (const auto& [key, value] : facts.processor) processor[key] = Json::parse(value);
  json["processor"] = processor;

  Json modalities = Json::object();
  for (const auto& modality : facts.modalities) {
    modalities[modality.name] = {{"present", modality.present}, {"status", modality.status}};
  }
  json["modalities"] = modalities;

  const TokenizerFacts& tokenizer = facts.tokenizer;
  json["tokenizer"] = {{"present", tokenizer.present},
                       {"model_type", tokenizer.model_type},
                       {"vocab_size", tokenizer.vocab_size},
                       {"num_added_tokens", tokenizer.num_added_tokens},
                       {"num_special_tokens", tokenizer.num_special_tokens},
                       {"bos_token", tokenizer.bos_token},
                       {"eos_token", tokenizer.eos_token},
                       {"pad_token", tokenizer.pad_token},
                       {"add_bos_token", tokenizer.add_bos_token}};
  const TemplateFacts& chat_template = facts.chat_template;
  json["chat_template"] = {{"present", chat_template.present},
                           {"source", chat_template.source},
                           {"size_bytes", chat_template.size_bytes},
                           {"supports_tools", chat_template.supports_tools},
                           {"supports_thinking", chat_template.supports_thinking},
                           {"named_templates", chat_template.named_templates}};
  Json generation = Json::object();
  for (const auto& [key, value] : facts.generation) generation[key] = Json::parse(value);
  json["generation"] = generation;

  Json findings = Json::array();
  for (const auto& finding : facts.findings) {
    findings.push_back({{"severity", severity_name(finding.severity)}, {"message", finding.message}});
  }
  json["findings"] = findings;
  json["consistent"] = !facts.has_errors();
  return json;
}

}  // namespace mxgemma
