// Safetensors shards, memory-mapped; tensors are views into the mapping (zero copy).
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
};

// All shards of a bundle, found through model.safetensors.index.json or a single
// model.safetensors.
class TensorStore {
 public:
  static TensorStore open(const std::filesystem::path& bundle_dir);

  const Tensor* find(const std::string& name) const;
  // Throws std::runtime_error "<bundle>: missing tensor <name>" when absent.
  const Tensor& get(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;
  size_t total_bytes() const;  // sum of shard file sizes
  size_t num_shards() const { return shards_.size(); }

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const Tensor*> by_name_;
};

}  // namespace mxgemma
