// Safetensors shards, memory-mapped; tensors are views into the mapping (zero copy). The format
// does not require tensors to be aligned and mx.save_safetensors (MLX 0.32.4) does not pad its
// header, so a tensor whose bytes are not aligned to its element size is copied once into an
// aligned buffer at open time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "util/mapped_file.h"

namespace mxgemma {

enum class DType { f32, f16, bf16, u32, u8 };

size_t dtype_size(DType dtype);
// The safetensors spelling: "F32", "F16", "BF16", "U32", "U8".
const char* dtype_name(DType dtype);
// Parses a safetensors dtype string; "F8_E8M0" (how some MLX versions declare mxfp4 scales) reads
// as U8. Throws std::invalid_argument naming the dtype and the supported ones.
DType parse_dtype(const std::string& name);

// Largest header length accepted. An entry takes about 100 bytes, so an E2B bundle's few thousand
// tensors need well under 1 MB.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct Tensor {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // shard file name, for messages

  int64_t numel() const;
  // "[262144, 1536]"
  std::string shape_string() const;
};

class SafetensorsFile {
 public:
  // Maps the file and validates its header: throws std::runtime_error naming the file and the
  // tensor or field at fault (bad header length, non-JSON, unknown dtype, offsets past the end or
  // overlapping, byte count not equal to shape times element size).
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return file_->path(); }
  size_t file_size() const { return file_->size(); }

 private:
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
  // Aligned copies of the tensors whose bytes in the file are misaligned for their dtype.
  std::vector<std::unique_ptr<uint64_t[]>> realigned_;
};

// All shards of a bundle, found through model.safetensors.index.json or a single
// model.safetensors.
class TensorStore {
 public:
  // Reads model.safetensors.index.json when present: every shard it names must exist and contain
  // the tensors the index assigns to it. Without an index, reads model.safetensors. Throws
  // std::runtime_error naming the file and the tensor or field at fault.
  static TensorStore open(const std::filesystem::path& bundle_dir);

  const Tensor* find(const std::string& name) const;
  // Throws std::runtime_error "<bundle>: missing tensor <name>" when absent.
  const Tensor& get(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;
  size_t total_bytes() const;  // sum of shard file sizes
  size_t num_shards() const { return shards_.size(); }
  const std::filesystem::path& dir() const { return dir_; }
  // The index's "metadata" object as strings (numbers written in decimal); empty without an index.
  const std::map<std::string, std::string>& index_metadata() const { return index_metadata_; }

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const Tensor*> by_name_;
  std::map<std::string, std::string> index_metadata_;
};

}  // namespace mxgemma
