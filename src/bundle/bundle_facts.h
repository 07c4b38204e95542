// Bundle facts for a model card (architecture, quantization, shards, processor, modalities,
// tokenizer, template) and findings about what is missing or inconsistent, all gathered without
// stopping at the first problem. Bundle::open checks the same things but throws on the first one,
// so describe_bundle is the one to use on bundles that may be broken.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mxgemma {

enum class FindingSeverity {
  error,    // the bundle cannot load: inspect exits with status 1
  warning,  // loads, but something is unusual (an unused tensor, a file it could do without)
};

struct BundleFinding {
  FindingSeverity severity = FindingSeverity::error;
  // One line naming the file and the tensor or field at fault.
  std::string message;
};

struct ShardFacts {
  std::string file;         // name inside the bundle folder
  bool present = false;
  uint64_t file_bytes = 0;  // 0 when absent
  uint64_t data_bytes = 0;  // 8 + header length + the tensor bytes the header declares
  int num_tensors = 0;
};

struct ModalityFacts {
  std::string name;    // "text", "vision", "audio" or "video"
  bool present = false;
  std::string status;  // "runs", "not loadable", "loaded, no video input" or "absent"
};

struct TextModelFacts {
  std::string model_type;  // text_config.model_type, e.g. "gemma4_text"
  int num_hidden_layers = 0;
  int num_full_attention_layers = 0;
  int num_sliding_attention_layers = 0;
  std::vector<int> full_attention_layers;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;
  int global_head_dim = 0;  // 0 when the config sets none
  int vocab_size = 0;
  int sliding_window = 0;
  int num_kv_shared_layers = 0;
  int hidden_size_per_layer_input = 0;
  int max_position_embeddings = 0;
  double final_logit_softcapping = 0.0;
};

struct QuantizationFacts {
  bool present = false;
  std::string key;  // "quantization" or "quantization_config"
  std::string mode;
  int bits = 0;
  int group_size = 0;
  // Module path -> "mode/bits/group_size", or "not quantized" for a path set to false.
  std::map<std::string, std::string> overrides;
};

struct TensorCountFacts {
  int total = 0;
  int quantized = 0;      // weights with a .scales sidecar
  int scales = 0;         // .scales tensors
  int biases = 0;         // .biases tensors of quantized weights (affine mode)
  // Tensors outside the quantized triples by dtype name ("F16", "BF16", "F32", "U8", "U32").
  std::map<std::string, int> by_dtype;
  uint64_t quantized_bytes = 0;  // weights, scales and biases of quantized modules
  uint64_t unquantized_bytes = 0;
};

struct TokenizerFacts {
  bool present = false;      // tokenizer.json found and parsed
  std::string model_type;    // tokenizer.json model.type, e.g. "BPE"
  int vocab_size = 0;        // model vocabulary plus added tokens not in it
  int num_added_tokens = 0;
  int num_special_tokens = 0;  // added tokens marked "special"
  std::string bos_token;
  std::string eos_token;
  std::string pad_token;
  bool add_bos_token = false;
};

struct TemplateFacts {
  bool present = false;
  std::string source;  // "chat_template.jinja", "chat_template.json" or "tokenizer_config.json"
  uint64_t size_bytes = 0;
  bool supports_tools = false;     // reads the `tools` variable or emits tool-call tokens
  bool supports_thinking = false;  // reads `enable_thinking` or emits the thinking channel tokens
  std::vector<std::string> named_templates;  // names when chat_template is a list
};

struct BundleFacts {
  std::filesystem::path dir;
  std::vector<std::string> files;  // regular files in the folder, sorted

  // Source: config.json `_name_or_path`, jang_config.json `source_model.name` and
  // `source_model.architecture`, empty when absent.
  std::string name_or_path;
  std::string source_model;
  std::string source_architecture;

  std::string model_type;  // config.json model_type
  std::vector<std::string> architectures;
  std::string layout;  // tensor naming layout, see BundleLayout; empty when not recognized
  TextModelFacts text;
  QuantizationFacts quantization;
  TensorCountFacts tensors;

  std::vector<ShardFacts> shards;
  bool has_index = false;
  std::optional<uint64_t> indexed_bytes;  // index metadata total_size
  uint64_t shard_file_bytes = 0;          // sum of the shard files present
  std::map<std::string, std::string> index_metadata;
  std::optional<uint64_t> jang_total_weight_bytes;  // jang_config runtime.total_weight_bytes

  // processor_config.json flattened to dotted keys ("image_processor.patch_size" -> "16"), with
  // the values as JSON text. Scalars and lists of scalars are kept, lists of objects are not.
  std::map<std::string, std::string> processor;
  std::vector<ModalityFacts> modalities;
  TokenizerFacts tokenizer;
  TemplateFacts chat_template;
  // generation_config.json eos_token_id, bos_token_id and sampling defaults as JSON text.
  std::map<std::string, std::string> generation;

  std::vector<BundleFinding> findings;

  bool has_errors() const;
};

// Reads every file of the bundle in `dir` and records each problem as a finding instead of
// throwing. Throws std::runtime_error only when `dir` is not a folder.
BundleFacts describe_bundle(const std::filesystem::path& dir);

// The bundle card (README.md): a markdown table of the facts, the findings when there are any,
// and how to run the bundle with mxgemma.
std::string model_card_markdown(const BundleFacts& facts);

// The facts and findings as JSON, keys in a fixed order.
nlohmann::ordered_json bundle_facts_json(const BundleFacts& facts);

// Aligned "field  value" lines of the card's table, findings included, for a terminal.
std::string bundle_facts_text(const BundleFacts& facts);

}  // namespace mxgemma
