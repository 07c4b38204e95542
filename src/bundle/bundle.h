// A model bundle folder: configs, tokenizer files, chat template and memory-mapped weights,
// validated against the tensors the config implies before anything runs.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/config.h"
#include "bundle/safetensors.h"
#include "bundle/tensor_table.h"
#include "kernels/weight_matrix.h"

namespace mxgemma {

struct TokenizerConfig {
  std::string bos_token = "<bos>";
  std::string eos_token = "<eos>";
  std::string pad_token = "<pad>";
  bool add_bos_token = false;
  // The default template: chat_template.jinja, else tokenizer_config.json "chat_template" (a
  // string, or the entry named "default" of a list). Empty when there is none.
  std::string chat_template;
  // Every template by name ("default" included) when "chat_template" is a list of
  // {"name", "template"} and no chat_template.jinja replaces it; empty otherwise.
  std::map<std::string, std::string> named_chat_templates;
  // The special tokens that transformers passes to a chat template (bos_token, eos_token,
  // unk_token, sep_token, pad_token, cls_token, mask_token), those the file sets.
  std::map<std::string, std::string> special_tokens;
};

class Bundle {
 public:
  // Parses every config file, maps the shards and checks each tensor the config implies (text,
  // vision and audio) for presence, dtype and shape. Throws std::runtime_error with one line
  // naming the file and the tensor or field at fault.
  static Bundle open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const TextConfig& text_config() const { return config_.text; }
  const GenerationConfig& generation_config() const { return generation_; }
  const TokenizerConfig& tokenizer_config() const { return tokenizer_config_; }
  const nlohmann::json& processor_config() const { return processor_config_; }  // null if absent
  const std::optional<nlohmann::json>& jang_config() const { return jang_config_; }
  BundleLayout layout() const { return layout_; }
  const TensorStore& tensors() const { return store_; }
  std::filesystem::path tokenizer_json_path() const { return dir_ / "tokenizer.json"; }

  // Full name of a text-model tensor from its name below the text model
  // ("layers.3.mlp.up_proj.weight" -> "language_model.model.layers.3.mlp.up_proj.weight").
  std::string text_tensor_name(const std::string& local_name) const;

  // The weight of a linear module (dense or quantized, as stored) by full module path, without
  // ".weight". Shapes were checked at open().
  WeightMatrix linear(const std::string& module_path) const;
  // A 16- or 32-bit tensor by full name.
  const Tensor& tensor(const std::string& name) const { return store_.get(name); }
  // A 16- or 32-bit tensor widened to fp32.
  std::vector<float> tensor_f32(const std::string& name) const;

  // Count of quantized linear weights (tensors with a .scales sidecar).
  int num_quantized_tensors() const { return num_quantized_; }
  // The tensors open() checked, from model_tensor_table().
  const std::vector<TensorSpec>& tensor_table() const { return table_; }
  // Tensors of the shards that no table entry names, sorted by name. Optional table entries
  // (the shared-layer k/v of Hugging Face checkpoints) are not listed here.
  const std::vector<std::string>& unused_tensors() const { return unused_tensors_; }

 private:
  std::filesystem::path dir_;
  ModelConfig config_;
  GenerationConfig generation_;
  TokenizerConfig tokenizer_config_;
  nlohmann::json processor_config_;
  std::optional<nlohmann::json> jang_config_;
  BundleLayout layout_ = BundleLayout::hf_names;
  TensorStore store_;
  std::string text_prefix_;
  int num_quantized_ = 0;
  std::vector<TensorSpec> table_;
  std::vector<std::string> unused_tensors_;
};

// The naming layout of a bundle's tensors. Names under "model." (without "language_model.")
// are mlx_lm. Names under "language_model.model." are the Gemma 4 layouts, which share tensor
// names and differ in the audio subsampling Conv2d weights: PyTorch [out, in, 3, 3] is hf_names,
// MLX [out, 3, 3, in] is mlx_vlm. Without an audio tower, a config.json with a
// quantization_config key (written by mlx-vlm, removed by the JANG converter) means mlx_vlm.
// Throws std::runtime_error when the names match no layout.
BundleLayout detect_layout(const TensorStore& store, const ModelConfig& config);

}  // namespace mxgemma
