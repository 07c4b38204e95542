#include "util/npy.h"

#include <cstring>
#include <fstream>
#include <regex>
#include <stdexcept>

namespace mxgemma {

void write_npy_f32(const std::filesystem::path& path, const float* data, const std::vector<int64_t>& shape) {
  std::string shape_text = "(";
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    shape_text += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    if (i + 1 < shape.size()) shape_text += " ";
    count *= shape[i];
  }
  shape_text += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text + ", }";
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64 bytes.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';

  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error(path.string() + ": cannot open for writing");
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t length = uint16_t(header.size());
  const char length_bytes[2] = {char(length & 0xff), char(length >> 8)};
  out.write(length_bytes, 2);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(reinterpret_cast<const char*>(data), std::streamsize(count * int64_t(sizeof(float))));
  if (!out) throw std::runtime_error(path.string() + ": write failed");
}

NpyArray read_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  char prefix[10];
  if (!in.read(prefix, 10) || std::memcmp(prefix, "\x93NUMPY", 6) != 0) {
    throw std::runtime_error(path.string() + ": not a .npy file");
  }
  size_t header_length = uint8_t(prefix[8]) | (size_t(uint8_t(prefix[9])) << 8);
  if (prefix[6] != 1) {
    char extra[2];
    if (!in.read(extra, 2)) throw std::runtime_error(path.string() + ": truncated header");
    header_length |= (size_t(uint8_t(extra[0])) << 16) | (size_t(uint8_t(extra[1])) << 24);
  }
  std::string header(header_length, '\0');
  if (!in.read(header.data(), std::streamsize(header_length))) {
    throw std::runtime_error(path.string() + ": truncated header");
  }
  const bool is_f32 = header.find("'<f4'") != std::string::npos;
  const bool is_i32 = header.find("'<i4'") != std::string::npos;
  if ((!is_f32 && !is_i32) || header.find("'fortran_order': False") == std::string::npos) {
    throw std::runtime_error(path.string() + ": only little-endian float32/int32 C-order arrays are supported");
  }
  NpyArray array;
  std::smatch match;
  if (!std::regex_search(header, match, std::regex(R"('shape':\s*\(([^)]*)\))"))) {
    throw std::runtime_error(path.string() + ": header has no shape");
  }
  const std::string dims = match[1];
  int64_t count = 1;
  const std::regex number(R"(\d+)");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it) {
    array.shape.push_back(std::stoll(it->str()));
    count *= array.shape.back();
  }
  array.data.resize(size_t(count));
  if (is_f32) {
    in.read(reinterpret_cast<char*>(array.data.data()), std::streamsize(count * 4));
  } else {
    std::vector<int32_t> values(static_cast<size_t>(count));
    in.read(reinterpret_cast<char*>(values.data()), std::streamsize(count * 4));
    for (int64_t i = 0; i < count; ++i) array.data[size_t(i)] = float(values[size_t(i)]);
  }
  if (!in) throw std::runtime_error(path.string() + ": data shorter than the shape implies");
  return array;
}

}  // namespace mxgemma
