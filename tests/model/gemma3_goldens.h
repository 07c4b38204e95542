// Helpers of the gemma3_text tests: reading goldens and telling whether a bundle is the one the
// goldens were recorded on (scripts/oracle/record_gemma3_goldens.py).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "bundle/safetensors.h"

namespace mxgemma::test {

inline nlohmann::json read_golden_json(const std::filesystem::path& path, const std::string& how_to_make) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing " + path.string() + ": " + how_to_make);
  return nlohmann::json::parse(in);
}

// sum_i w_i * (2i + 1) mod 2^64 over the little-endian 64-bit words of the bytes, zero-padded to a
// multiple of 8, in hex: the fingerprint that record_gemma3_goldens.py stores per tensor.
inline std::string tensor_fingerprint(const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint64_t total = 0;
  for (size_t offset = 0, index = 0; offset < size; offset += 8, ++index) {
    uint64_t word = 0;
    for (size_t b = 0; b < 8 && offset + b < size; ++b) word |= uint64_t(bytes[offset + b]) << (8 * b);
    total += word * (2 * uint64_t(index) + 1);
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(total));
  return hex;
}

// Compares every tensor of `store` with the recorded fingerprints. Returns "" when all match and
// none is missing or extra, else a message that names the first tensors that differ.
inline std::string compare_fingerprints(const TensorStore& store, const nlohmann::json& recorded) {
  std::string differences;
  int count = 0;
  auto note = [&](const std::string& what) {
    if (++count <= 3) differences += (differences.empty() ? "" : ", ") + what;
  };
  for (const std::string& name : store.names()) {
    const Tensor& tensor = store.get(name);
    if (!recorded.contains(name)) {
      note(name + " (not in the goldens)");
    } else if (recorded.at(name).get<std::string>() != tensor_fingerprint(tensor.data, tensor.nbytes)) {
      note(name + " (other values)");
    }
  }
  for (const auto& [name, value] : recorded.items()) {
    if (!store.contains(name)) note(name + " (missing from the bundle)");
  }
  if (count == 0) return "";
  return std::to_string(count) + " tensors differ from the recorded bundle: " + differences;
}

}  // namespace mxgemma::test
