// Read-only memory map of a whole file; tensors point straight into it (zero copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace mxgemma {

class MappedFile {
 public:
  // Throws std::runtime_error naming the path when the file cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mxgemma
