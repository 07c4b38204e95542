// Test helpers: a small safetensors writer, tiny Gemma 4 bundles written from the tensor table,
// and a scratch folder per test.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bundle/config.h"
#include "bundle/tensor_table.h"

namespace mxgemma::testing {

namespace fs = std::filesystem;

// Passes when `text` contains `part`; the failure message shows both.
inline ::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// A fresh folder under the system temp dir, removed at destruction. The name carries the test,
// the process id and a sequence number, so parallel test processes and nested folders never meet.
class ScratchDir {
 public:
  ScratchDir() {
    static int sequence = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "mxgemma_bundle_" + std::string(info->test_suite_name()) + "_" +
                       info->name() + "_" + std::to_string(::getpid()) + "_" +
                       std::to_string(sequence++);
    // Parameterized test names contain '/'.
    std::replace(name.begin(), name.end(), '/', '_');
    path_ = fs::temp_directory_path() / name;
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_json(const fs::path& path, const nlohmann::json& json) {
  write_file(path, json.dump(2));
}

// The 8-byte little-endian length, the header text, then the data block, as given.
inline std::string safetensors_bytes(uint64_t header_length, const std::string& header,
                                     const std::string& data) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = char((header_length >> (8 * i)) & 0xff);
  return bytes + header + data;
}

inline size_t test_dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  return 1;
}

// Collects tensors and writes them as one safetensors file, in insertion order.
class SafetensorsWriter {
 public:
  // Adds a tensor whose bytes are a deterministic pattern (or `bytes` when given).
  void add(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
           std::string bytes = {}) {
    size_t count = 1;
    for (int64_t dim : shape) count *= size_t(dim);
    const size_t nbytes = count * test_dtype_size(dtype);
    if (bytes.empty()) {
      bytes.resize(nbytes);
      // Little-endian pairs 0x3cNN are about 1.0 in F16 and 0.008 in BF16. U8 and U32 tensors
      // get small varied codes.
      for (size_t i = 0; i < nbytes; ++i) bytes[i] = char(i % 2 ? 0x3c : (i * 7) % 64);
    }
    entries_.push_back({name, dtype, shape, std::move(bytes)});
  }

  nlohmann::json header() const {
    nlohmann::json header = nlohmann::json::object();
    header["__metadata__"] = {{"format", "mlx"}};
    size_t offset = 0;
    for (const auto& entry : entries_) {
      header[entry.name] = {{"dtype", entry.dtype},
                            {"shape", entry.shape},
                            {"data_offsets", {offset, offset + entry.bytes.size()}}};
      offset += entry.bytes.size();
    }
    return header;
  }

  std::string data() const {
    std::string data;
    for (const auto& entry : entries_) data += entry.bytes;
    return data;
  }

  void write(const fs::path& path) const {
    const std::string text = header().dump();
    write_file(path, safetensors_bytes(text.size(), text, data()));
  }

  std::vector<std::string> names() const {
    std::vector<std::string> names;
    for (const auto& entry : entries_) names.push_back(entry.name);
    return names;
  }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::vector<Entry> entries_;
};

struct TinyBundleOptions {
  BundleLayout layout = BundleLayout::hf_names;
  std::string quant_mode = "mxfp4";  // "mxfp4", "affine" or "" for a 16-bit bundle
  bool vision = true;
  bool audio = true;
  int num_shards = 2;  // 1 writes a single model.safetensors without an index
};

// A 5-layer Gemma 4 text model (layers 3 and 4 KV-shared, full at 2 and 4) with tiny vision
// and audio towers.
inline nlohmann::json tiny_config(const TinyBundleOptions& options) {
  nlohmann::json text = {
      {"model_type", "gemma4_text"},
      {"hidden_size", 64},
      {"intermediate_size", 128},
      {"num_hidden_layers", 5},
      {"num_attention_heads", 2},
      {"num_key_value_heads", 1},
      {"head_dim", 32},
      {"global_head_dim", 64},
      {"sliding_window", 16},
      {"max_position_embeddings", 256},
      {"rms_norm_eps", 1e-6},
      {"vocab_size", 96},
      {"vocab_size_per_layer_input", 96},
      {"hidden_size_per_layer_input", 32},
      {"num_kv_shared_layers", 2},
      {"use_double_wide_mlp", true},
      {"attention_k_eq_v", false},
      {"final_logit_softcapping", 30.0},
      {"hidden_activation", "gelu_pytorch_tanh"},
      {"tie_word_embeddings", true},
      {"layer_types",
       {"sliding_attention", "sliding_attention", "full_attention", "sliding_attention",
        "full_attention"}},
      {"rope_parameters",
       {{"full_attention",
         {{"rope_type", "proportional"},
          {"rope_theta", 1000000.0},
          {"partial_rotary_factor", 0.25}}},
        {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}}},
      {"eos_token_id", 1},
      {"bos_token_id", 2},
      {"pad_token_id", 0},
  };
  nlohmann::json config = {{"model_type", "gemma4"},
                           {"architectures", {"Gemma4ForConditionalGeneration"}},
                           {"text_config", text},
                           {"eos_token_id", {1, 106}},
                           {"image_token_id", 258880},
                           {"audio_token_id", 258881},
                           {"boi_token_id", 255999},
                           {"eoi_token_id", 258882},
                           {"boa_token_id", 256000},
                           {"eoa_token_index", 258883}};
  config["vision_config"] = nullptr;
  config["audio_config"] = nullptr;
  if (options.vision) {
    config["vision_config"] = {{"model_type", "gemma4_vision"},
                               {"hidden_size", 64},
                               {"intermediate_size", 128},
                               {"num_hidden_layers", 2},
                               {"num_attention_heads", 2},
                               {"num_key_value_heads", 2},
                               {"head_dim", 32},
                               {"patch_size", 4},
                               {"pooling_kernel_size", 3},
                               {"position_embedding_size", 16},
                               {"default_output_length", 4},
                               {"use_clipped_linears", true},
                               {"rope_parameters",
                                {{"rope_type", "default"}, {"rope_theta", 100.0}}}};
  }
  if (options.audio) {
    config["audio_config"] = {{"hidden_size", 64},
                              {"num_hidden_layers", 2},
                              {"num_attention_heads", 2},
                              {"subsampling_conv_channels", {8, 4}},
                              {"conv_kernel_size", 5},
                              {"attention_chunk_size", 12},
                              {"attention_context_left", 13},
                              {"attention_context_right", 0},
                              {"attention_logit_cap", 50.0},
                              {"use_clipped_linears", true},
                              {"output_proj_dims", 64},
                              {"rms_norm_eps", 1e-6}};
  }
  if (options.quant_mode == "mxfp4") {
    config["quantization"] = {{"group_size", 32}, {"bits", 4}, {"mode", "mxfp4"}};
  } else if (options.quant_mode == "affine") {
    config["quantization"] = {{"group_size", 64}, {"bits", 4}, {"mode", "affine"}};
  }
  if (!options.quant_mode.empty()) {
    if (options.layout == BundleLayout::mlx_vlm) {
      config["quantization_config"] = config["quantization"];
    } else {
      // Converter notes the JANG converter adds; the loader ignores string values.
      config["quantization"]["quantization_backend"] = "mx.quantize";
      config["quantization"]["tied_embedding"] = "fp16_passthrough";
    }
  }
  return config;
}

// Writes a complete bundle whose tensors follow the table: text linears quantized as in the
// JANG converter (everything but embed_tokens, and only when `in` divides into groups), media
// tensors BF16, other dense tensors F16.
inline void write_tiny_bundle(const fs::path& dir, const TinyBundleOptions& options = {}) {
  fs::create_directories(dir);
  const nlohmann::json config = tiny_config(options);
  write_json(dir / "config.json", config);
  write_json(dir / "generation_config.json",
             {{"bos_token_id", 2},
              {"pad_token_id", 0},
              {"eos_token_id", {1, 106, 50}},
              {"do_sample", true},
              {"temperature", 1.0},
              {"top_k", 64},
              {"top_p", 0.95}});
  write_json(dir / "tokenizer.json", {{"version", "1.0"}, {"model", {{"type", "BPE"}}}});
  write_json(dir / "tokenizer_config.json",
             {{"bos_token", "<bos>"},
              {"eos_token", {{"content", "<eos>"}, {"lstrip", false}}},
              {"pad_token", "<pad>"},
              {"add_bos_token", true},
              {"chat_template", "{{ bos_token }}from tokenizer_config"}});

  const ModelConfig model = parse_model_config(dir / "config.json");
  const int group_size = options.quant_mode == "affine" ? 64 : 32;
  std::vector<SafetensorsWriter> shards(size_t(std::max(1, options.num_shards)));
  size_t next = 0;
  for (const auto& spec : model_tensor_table(model, options.layout)) {
    if (!spec.required) continue;
    SafetensorsWriter& shard = shards[next++ % shards.size()];
    const bool media = spec.name.rfind("language_model.", 0) != 0;
    const std::string float_dtype = media ? "BF16" : "F16";
    if (spec.kind != TensorKind::linear) {
      shard.add(spec.name, float_dtype, spec.kind == TensorKind::scalar
                                            ? std::vector<int64_t>{}
                                            : spec.shape);
      continue;
    }
    const int64_t out = spec.shape[0];
    const int64_t in = spec.shape[1];
    const bool is_embed_tokens =
        spec.name.size() >= 12 && spec.name.compare(spec.name.size() - 12, 12, "embed_tokens") == 0;
    if (options.quant_mode.empty() || media || is_embed_tokens || in % group_size != 0) {
      shard.add(spec.name + ".weight", float_dtype, spec.shape);
      continue;
    }
    shard.add(spec.name + ".weight", "U32", {out, in * 4 / 32});
    if (options.quant_mode == "mxfp4") {
      shard.add(spec.name + ".scales", "U8", {out, in / 32});
    } else {
      shard.add(spec.name + ".scales", "F16", {out, in / group_size});
      shard.add(spec.name + ".biases", "F16", {out, in / group_size});
    }
  }

  if (shards.size() == 1) {
    shards[0].write(dir / "model.safetensors");
    return;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    shards[i].write(dir / name);
    for (const auto& tensor : shards[i].names()) weight_map[tensor] = name;
  }
  write_json(dir / "model.safetensors.index.json",
             {{"metadata", {{"format", "mxfp4"}, {"total_size", 0}}}, {"weight_map", weight_map}});
}

}  // namespace mxgemma::testing
