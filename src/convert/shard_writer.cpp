#include "convert/shard_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace mxgemma {
namespace {

constexpr uint64_t kHeaderAlignment = 8;

std::string shard_file_name(size_t index, size_t count) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return name;
}

void finish_layout(ShardLayout& shard, const std::map<std::string, std::string>& metadata) {
  std::stable_sort(shard.entries.begin(), shard.entries.end(), [](const ShardEntry& a, const ShardEntry& b) {
    const size_t size_a = dtype_size(a.dtype);
    const size_t size_b = dtype_size(b.dtype);
    if (size_a != size_b) return size_a > size_b;
    return a.name < b.name;
  });

  nlohmann::ordered_json header;
  header["__metadata__"] = metadata;
  uint64_t data_offset = 0;
  for (const ShardEntry& entry : shard.entries) {
    header[entry.name] = {{"dtype", dtype_name(entry.dtype)},
                          {"shape", entry.shape},
                          {"data_offsets", {data_offset, data_offset + entry.nbytes}}};
    data_offset += entry.nbytes;
  }
  shard.header = header.dump();
  const uint64_t padded = (8 + shard.header.size() + kHeaderAlignment - 1) / kHeaderAlignment *
                          kHeaderAlignment;
  shard.header.append(padded - 8 - shard.header.size(), ' ');

  uint64_t offset = 8 + shard.header.size();
  for (ShardEntry& entry : shard.entries) {
    entry.file_offset = offset;
    offset += entry.nbytes;
  }
  shard.file_size = offset;
}

std::string system_error(const std::string& what, const std::filesystem::path& path) {
  return path.string() + ": " + what + " failed: " + std::strerror(errno);
}

}  // namespace

std::vector<ShardLayout> layout_shards(const std::vector<std::vector<ShardEntry>>& groups,
                                       uint64_t shard_size,
                                       const std::map<std::string, std::string>& metadata) {
  std::vector<ShardLayout> shards;
  uint64_t current_bytes = 0;
  for (const std::vector<ShardEntry>& group : groups) {
    if (shards.empty() || current_bytes >= shard_size) {
      shards.emplace_back();
      current_bytes = 0;
    }
    for (const ShardEntry& entry : group) {
      shards.back().entries.push_back(entry);
      current_bytes += entry.nbytes;
    }
  }
  for (size_t i = 0; i < shards.size(); ++i) {
    shards[i].file_name = shard_file_name(i, shards.size());
    finish_layout(shards[i], metadata);
  }
  return shards;
}

ShardFile::ShardFile(const std::filesystem::path& path, const ShardLayout& layout)
    : path_(path), expected_size_(layout.file_size) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(system_error("create", path));
  const uint64_t header_size = layout.header.size();
  write_at(0, &header_size, sizeof header_size);  // little-endian on every supported host
  write_at(8, layout.header.data(), layout.header.size());
}

ShardFile::~ShardFile() {
  if (fd_ >= 0) ::close(fd_);
}

void ShardFile::write_at(uint64_t offset, const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t written = ::pwrite(fd_, bytes, size, static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(system_error("write", path_));
    }
    if (written == 0) {
      errno = ENOSPC;
      throw std::runtime_error(system_error("write", path_));
    }
    bytes += written;
    offset += static_cast<uint64_t>(written);
    size -= static_cast<size_t>(written);
  }
}

void ShardFile::finish() {
  struct stat info {};
  if (::fstat(fd_, &info) != 0) throw std::runtime_error(system_error("stat", path_));
  if (static_cast<uint64_t>(info.st_size) != expected_size_) {
    throw std::runtime_error(path_.string() + ": wrote " + std::to_string(info.st_size) +
                             " bytes, expected " + std::to_string(expected_size_));
  }
  // Delayed allocation can report a full disk only when the data is flushed.
  if (::fsync(fd_) != 0) throw std::runtime_error(system_error("fsync", path_));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw std::runtime_error(system_error("close", path_));
}

}  // namespace mxgemma
