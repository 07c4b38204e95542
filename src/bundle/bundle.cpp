#include "bundle/bundle.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "bundle/json_fields.h"
#include "util/half.h"
#include "util/log.h"

namespace mxgemma {

namespace {

namespace fs = std::filesystem;

constexpr const char* kSscpConv0 = "audio_tower.subsample_conv_projection.layer0.conv.weight";

bool is_float_dtype(DType dtype) {
  return dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16;
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Checks a bundle's tensors against the table and counts quantized linears. Every message is
// "<bundle dir>/<shard>: <tensor>: <problem>" or "<bundle dir>: missing tensor <name> (...)".
class TensorChecker {
 public:
  TensorChecker(const fs::path& dir, const TensorStore& store,
                const QuantizationConfig& quantization)
      : dir_(dir), store_(store), quantization_(quantization) {}

  void check(const TensorSpec& spec) {
    switch (spec.kind) {
      case TensorKind::linear:
        check_linear(spec);
        break;
      case TensorKind::dense:
        check_dense(spec);
        break;
      case TensorKind::scalar:
        check_scalar(spec);
        break;
    }
  }

  int num_quantized() const { return num_quantized_; }
  const std::set<std::string>& used() const { return used_; }

 private:
  [[noreturn]] void fail(const Tensor& tensor, const std::string& problem) const {
    throw std::runtime_error((dir_ / tensor.file).string() + ": " + tensor.name + ": " + problem);
  }

  [[noreturn]] void fail_missing(const std::string& name, const TensorSpec& spec) const {
    throw std::runtime_error(dir_.string() + ": missing tensor " + name + " (required by " +
                             spec.required_by + ")");
  }

  // The tensor, or nullptr for an optional one that is absent.
  const Tensor* lookup(const std::string& name, const TensorSpec& spec) {
    const Tensor* tensor = store_.find(name);
    if (tensor == nullptr && spec.required) fail_missing(name, spec);
    if (tensor != nullptr) used_.insert(name);
    return tensor;
  }

  void expect_shape(const Tensor& tensor, const std::vector<int64_t>& shape) const {
    if (tensor.shape != shape) {
      fail(tensor, "expected shape " + shape_to_string(shape) + ", found " +
                       tensor.shape_string());
    }
  }

  void expect_float(const Tensor& tensor) const {
    if (!is_float_dtype(tensor.dtype)) {
      fail(tensor, std::string("expected dtype F16, BF16 or F32, found ") +
                       dtype_name(tensor.dtype));
    }
  }

  void expect_dtype(const Tensor& tensor, DType dtype) const {
    if (tensor.dtype != dtype) {
      fail(tensor, std::string("expected dtype ") + dtype_name(dtype) + ", found " +
                       dtype_name(tensor.dtype));
    }
  }

  void check_dense(const TensorSpec& spec) {
    const Tensor* tensor = lookup(spec.name, spec);
    if (tensor == nullptr) return;
    expect_float(*tensor);
    expect_shape(*tensor, spec.shape);
  }

  void check_scalar(const TensorSpec& spec) {
    const Tensor* tensor = lookup(spec.name, spec);
    if (tensor == nullptr) return;
    expect_float(*tensor);
    if (tensor->numel() != 1) {
      fail(*tensor, "expected one value (shape [] or [1]), found shape " + tensor->shape_string());
    }
  }

  void check_linear(const TensorSpec& spec) {
    const std::string weight_name = spec.name + ".weight";
    const Tensor* scales = store_.find(spec.name + ".scales");
    const Tensor* weight = store_.find(weight_name);
    if (weight == nullptr && scales != nullptr) fail_missing(weight_name, spec);
    weight = lookup(weight_name, spec);
    if (weight == nullptr) return;

    if (scales == nullptr) {
      expect_float(*weight);
      expect_shape(*weight, spec.shape);
      if (store_.contains(spec.name + ".biases")) {
        fail(*store_.find(spec.name + ".biases"), "quantization biases without .scales");
      }
      return;
    }
    used_.insert(scales->name);
    check_quantized(spec, *weight, *scales);
    ++num_quantized_;
  }

  void check_quantized(const TensorSpec& spec, const Tensor& weight, const Tensor& scales) {
    if (!quantization_.present) {
      fail(scales, "quantized weight, but config.json has no quantization block");
    }
    const std::optional<QuantSpec> quant = quantization_.spec_for(spec.name);
    if (!quant) {
      fail(scales, "quantized weight, but config.json " + quantization_.key + "." + spec.name +
                       " is false");
    }
    const int64_t out = spec.shape[0];
    const int64_t in = spec.shape[1];
    if (in % quant->group_size != 0 || (in * quant->bits) % 32 != 0) {
      fail(weight, "input size " + std::to_string(in) + " is not a multiple of group_size " +
                       std::to_string(quant->group_size));
    }
    expect_dtype(weight, DType::u32);
    expect_shape(weight, {out, in * quant->bits / 32});

    const std::vector<int64_t> scale_shape = {out, in / quant->group_size};
    const Tensor* biases = store_.find(spec.name + ".biases");
    if (quant->mode == "mxfp4") {
      expect_dtype(scales, DType::u8);
      expect_shape(scales, scale_shape);
      if (biases != nullptr) fail(*biases, "mxfp4 weights have no biases");
      return;
    }

    // Affine: one 16- or 32-bit scale and bias per group.
    expect_float(scales);
    expect_shape(scales, scale_shape);
    if (biases == nullptr) fail_missing(spec.name + ".biases", spec);
    used_.insert(biases->name);
    expect_dtype(*biases, scales.dtype);
    expect_shape(*biases, scale_shape);
  }

  const fs::path& dir_;
  const TensorStore& store_;
  const QuantizationConfig& quantization_;
  int num_quantized_ = 0;
  std::set<std::string> used_;
};

[[noreturn]] void fail_entry(const JsonFields& fields, const std::string& entry, const std::string& problem) {
  fields.fail("chat_template", entry + ": " + problem);
}

// A special-token entry of tokenizer_config.json: a string or {"content": string, ...}.
std::string read_token_string(const JsonFields& fields, const std::string& key,
                              const std::string& fallback) {
  if (!fields.has(key)) return fallback;
  const auto& value = fields.raw(key);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object()) return fields.require_object(key).require_string("content");
  fields.fail(key, "expected a string or an object with \"content\", found " +
                       json_type_name(value));
}

// chat_template as a string, or as a list of {"name", "template"} whose entry "default" is the
// default template (empty when the list has none) and every entry goes to `named`.
std::string read_chat_template(const JsonFields& fields, std::map<std::string, std::string>& named) {
  named.clear();
  if (!fields.has("chat_template")) return "";
  const auto& value = fields.raw("chat_template");
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_array()) {
    fields.fail("chat_template", "expected a string or a list of {\"name\", \"template\"}, found " +
                                     json_type_name(value));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const auto& entry = value[i];
    const std::string where = "entry " + std::to_string(i);
    if (!entry.is_object()) fail_entry(fields, where, "expected an object, found " + json_type_name(entry));
    if (!entry.contains("name") || !entry["name"].is_string()) fail_entry(fields, where, "\"name\" is missing or not a string");
    if (!entry.contains("template") || !entry["template"].is_string()) {
      fail_entry(fields, where, "\"template\" is missing or not a string");
    }
    named[entry["name"].get<std::string>()] = entry["template"].get<std::string>();
  }
  const auto found = named.find("default");
  return found == named.end() ? "" : found->second;
}

TokenizerConfig read_tokenizer_config(const fs::path& dir) {
  TokenizerConfig config;
  const fs::path path = dir / "tokenizer_config.json";
  if (fs::exists(path)) {
    const nlohmann::json json = read_json_file(path);
    if (!json.is_object()) throw std::runtime_error(path.string() + ": expected a JSON object");
    const JsonFields fields(json, path.string(), "");
    config.bos_token = read_token_string(fields, "bos_token", config.bos_token);
    config.eos_token = read_token_string(fields, "eos_token", config.eos_token);
    config.pad_token = read_token_string(fields, "pad_token", config.pad_token);
    config.add_bos_token = fields.get_bool("add_bos_token", config.add_bos_token);
    for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
      if (fields.has(key) && !fields.raw(key).is_null()) config.special_tokens[key] = read_token_string(fields, key, "");
    }
    config.chat_template = read_chat_template(fields, config.named_chat_templates);
  }

  // A separate template file wins over the tokenizer_config.json copy, as in transformers.
  const fs::path jinja_path = dir / "chat_template.jinja";
  const fs::path json_path = dir / "chat_template.json";
  if (fs::exists(jinja_path)) {
    config.chat_template = read_text_file(jinja_path);
    config.named_chat_templates.clear();
  } else if (fs::exists(json_path)) {
    const nlohmann::json json = read_json_file(json_path);
    if (!json.is_object()) {
      throw std::runtime_error(json_path.string() + ": expected a JSON object");
    }
    config.chat_template = read_chat_template(JsonFields(json, json_path.string(), ""), config.named_chat_templates);
  }
  return config;
}

std::optional<nlohmann::json> read_optional_object(const fs::path& path) {
  if (!fs::exists(path)) return std::nullopt;
  nlohmann::json json = read_json_file(path);
  if (!json.is_object()) {
    throw std::runtime_error(path.string() + ": expected a JSON object, found " +
                             json_type_name(json));
  }
  return json;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

BundleLayout detect_layout(const TensorStore& store, const ModelConfig& config) {
  bool gemma4_names = false;
  bool mlx_lm_names = false;
  for (const auto& name : store.names()) {
    if (starts_with(name, "model.language_model.")) {
      throw std::runtime_error(store.dir().string() + ": " + name +
                               ": Hugging Face checkpoint names; convert the checkpoint to MLX "
                               "(mlx-vlm or the JANG converter) first");
    }
    gemma4_names = gemma4_names || starts_with(name, "language_model.model.");
    mlx_lm_names = mlx_lm_names || starts_with(name, "model.layers.");
  }
  if (gemma4_names == mlx_lm_names) {
    throw std::runtime_error(store.dir().string() +
                             ": tensor names match no known layout (expected either "
                             "language_model.model.* or model.layers.*, not both)");
  }
  if (mlx_lm_names) return BundleLayout::mlx_lm;

  if (const Tensor* conv = store.find(kSscpConv0); conv != nullptr && conv->shape.size() == 4) {
    // Input channels are 1: PyTorch puts them at dim 1, MLX at dim 3.
    if (conv->shape[1] == 1 && conv->shape[3] != 1) return BundleLayout::hf_names;
    if (conv->shape[3] == 1 && conv->shape[1] != 1) return BundleLayout::mlx_vlm;
  }
  return config.has_quantization_config ? BundleLayout::mlx_vlm : BundleLayout::hf_names;
}

Bundle Bundle::open(const fs::path& dir) {
  if (!fs::exists(dir)) throw std::runtime_error(dir.string() + ": bundle folder not found");
  if (!fs::is_directory(dir)) {
    throw std::runtime_error(dir.string() + ": not a folder; -m takes the bundle folder, not a file in it");
  }
  Bundle bundle;
  bundle.dir_ = dir;

  const fs::path config_path = dir / "config.json";
  if (!fs::exists(config_path)) throw std::runtime_error(config_path.string() + ": not found");
  bundle.config_ = parse_model_config(config_path);

  const fs::path generation_path = dir / "generation_config.json";
  bundle.generation_ = fs::exists(generation_path)
                           ? parse_generation_config(generation_path, bundle.config_)
                           : default_generation_config(bundle.config_);

  const fs::path tokenizer_path = dir / "tokenizer.json";
  if (!fs::exists(tokenizer_path)) {
    throw std::runtime_error(tokenizer_path.string() + ": not found; the bundle has no tokenizer");
  }
  bundle.tokenizer_config_ = read_tokenizer_config(dir);
  bundle.jang_config_ = read_optional_object(dir / "jang_config.json");
  if (auto processor = read_optional_object(dir / "processor_config.json")) {
    bundle.processor_config_ = std::move(*processor);
  }

  bundle.store_ = TensorStore::open(dir);
  bundle.layout_ = detect_layout(bundle.store_, bundle.config_);
  bundle.text_prefix_ = text_tensor_prefix(bundle.layout_);
  bundle.table_ = model_tensor_table(bundle.config_, bundle.layout_);

  TensorChecker checker(dir, bundle.store_, bundle.config_.quantization);
  for (const auto& spec : bundle.table_) checker.check(spec);
  bundle.num_quantized_ = checker.num_quantized();
  for (const auto& name : bundle.store_.names()) {
    if (!checker.used().count(name)) bundle.unused_tensors_.push_back(name);
  }
  if (!bundle.unused_tensors_.empty()) {
    MXG_LOG_INFO("%s: %zu tensors are not used by the model, e.g. %s", dir.c_str(),
                 bundle.unused_tensors_.size(), bundle.unused_tensors_.front().c_str());
  }
  MXG_LOG_DEBUG("%s: layout %s, %zu shards, %d quantized linears", dir.c_str(),
                layout_name(bundle.layout_), bundle.store_.num_shards(), bundle.num_quantized_);
  return bundle;
}

std::string Bundle::text_tensor_name(const std::string& local_name) const {
  return text_prefix_ + local_name;
}

WeightMatrix Bundle::linear(const std::string& module_path) const {
  const Tensor& weight = store_.get(module_path + ".weight");
  const auto where = [&](const Tensor& tensor) {
    return (dir_ / tensor.file).string() + ": " + tensor.name;
  };
  if (weight.shape.size() != 2) {
    throw std::invalid_argument(where(weight) + ": expected a 2-D weight, found shape " +
                                weight.shape_string());
  }

  WeightMatrix matrix;
  matrix.rows = weight.shape[0];
  matrix.data = weight.data;
  const Tensor* scales = store_.find(module_path + ".scales");
  if (scales == nullptr) {
    switch (weight.dtype) {
      case DType::f32:
        matrix.format = WeightFormat::f32;
        matrix.bits = 32;
        break;
      case DType::f16:
        matrix.format = WeightFormat::f16;
        break;
      case DType::bf16:
        matrix.format = WeightFormat::bf16;
        break;
      default:
        throw std::invalid_argument(where(weight) + ": dtype " + dtype_name(weight.dtype) +
                                    " without .scales is not a dense weight");
    }
    matrix.cols = weight.shape[1];
    return matrix;
  }

  const std::optional<QuantSpec> quant = config_.quantization.spec_for(module_path);
  if (!quant || weight.dtype != DType::u32) {
    throw std::invalid_argument(where(weight) + ": not a quantized weight this bundle describes");
  }
  matrix.bits = quant->bits;
  matrix.group_size = quant->group_size;
  matrix.cols = weight.shape[1] * 32 / quant->bits;
  if (quant->mode == "mxfp4") {
    matrix.format = WeightFormat::mxfp4;
    matrix.e8m0_scales = static_cast<const uint8_t*>(scales->data);
    return matrix;
  }
  const Tensor& biases = store_.get(module_path + ".biases");
  matrix.format = WeightFormat::affine;
  matrix.affine_scales = scales->data;
  matrix.affine_biases = biases.data;
  matrix.affine_scale_type = scales->dtype == DType::f16    ? ScaleType::f16
                             : scales->dtype == DType::bf16 ? ScaleType::bf16
                                                            : ScaleType::f32;
  return matrix;
}

std::vector<float> Bundle::tensor_f32(const std::string& name) const {
  const Tensor& tensor = store_.get(name);
  const size_t count = size_t(tensor.numel());
  std::vector<float> values(count);
  const auto* bytes = static_cast<const uint8_t*>(tensor.data);
  switch (tensor.dtype) {
    case DType::f32:
      std::memcpy(values.data(), bytes, count * sizeof(float));
      break;
    case DType::f16:
    case DType::bf16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t half;
        std::memcpy(&half, bytes + 2 * i, sizeof half);
        values[i] = tensor.dtype == DType::f16 ? fp16_to_float(half) : bf16_to_float(half);
      }
      break;
    default:
      throw std::invalid_argument((dir_ / tensor.file).string() + ": " + name + ": dtype " +
                                  dtype_name(tensor.dtype) + " is not a float type");
  }
  return values;
}

}  // namespace mxgemma
