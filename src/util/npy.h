// NumPy .npy files (format 1.0, little-endian float32 or int32, C order): the logits exchange format.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mxgemma {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // int32 arrays are widened to float
};

// Throws std::runtime_error naming the path on a write failure.
void write_npy_f32(const std::filesystem::path& path, const float* data, const std::vector<int64_t>& shape);
// Reads '<f4' or '<i4' arrays in C order; throws std::runtime_error naming the path otherwise.
NpyArray read_npy(const std::filesystem::path& path);

}  // namespace mxgemma
