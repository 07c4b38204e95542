// Safetensors shards written in place. The layout (which shard, which offset) of every output
// tensor is fixed before any data is produced. Each tensor's bytes then go straight to their
// final offset with pwrite, and memory needs no more than one chunk of one tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/safetensors.h"

namespace mxgemma {

struct ShardEntry {
  std::string name;
  DType dtype = DType::f16;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  uint64_t file_offset = 0;  // absolute offset of the first byte in the shard file
};

struct ShardLayout {
  std::string file_name;  // model-00001-of-00004.safetensors
  std::string header;     // the JSON header, padded with spaces
  std::vector<ShardEntry> entries;
  uint64_t file_size = 0;
};

// Lays out `groups` (each a list of tensors kept in one shard, such as a weight with its scales)
// in shards: a shard is closed once it reaches `shard_size` bytes of tensor data. Inside a shard,
// tensors are ordered by decreasing element size, then by name. The header is padded with spaces
// to a multiple of 8 bytes, so every tensor starts at a multiple of its element size, as jangq's
// aligned_safetensors writer lays shards out. `metadata` becomes the header's __metadata__.
std::vector<ShardLayout> layout_shards(const std::vector<std::vector<ShardEntry>>& groups,
                                       uint64_t shard_size,
                                       const std::map<std::string, std::string>& metadata);

// One shard file open for writing. Every failed write throws std::runtime_error naming the file
// and the system's reason (such as "No space left on device" or "File too large").
class ShardFile {
 public:
  ShardFile(const std::filesystem::path& path, const ShardLayout& layout);
  ~ShardFile();
  ShardFile(const ShardFile&) = delete;
  ShardFile& operator=(const ShardFile&) = delete;

  void write_at(uint64_t offset, const void* data, size_t size);
  // Closes the file and checks that it has the laid-out size; throws on failure.
  void finish();

 private:
  std::filesystem::path path_;
  uint64_t expected_size_ = 0;
  int fd_ = -1;
};

}  // namespace mxgemma
