#include "bundle/safetensors.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "bundle/json_fields.h"
#include "bundle/tensor_table.h"
#include "util/log.h"

namespace mxgemma {

namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& what,
                       const std::string& problem) {
  throw std::runtime_error(file.string() + ": " + what + ": " + problem);
}

// Reads the non-negative integer at `value`, for shapes and offsets.
uint64_t read_count(const std::filesystem::path& file, const std::string& what,
                    const nlohmann::json& value) {
  const bool negative = value.is_number_integer() && !value.is_number_unsigned() &&
                        value.get<int64_t>() < 0;
  if (!value.is_number_integer() || negative) {
    fail(file, what, "expected a non-negative integer, found " + value.dump());
  }
  return value.get<uint64_t>();
}

struct RawEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;
  uint64_t end;
};

RawEntry parse_entry(const std::filesystem::path& file, const std::string& name,
                     const nlohmann::json& entry) {
  if (!entry.is_object()) fail(file, name, "expected an object, found " + json_type_name(entry));
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) fail(file, name, std::string("missing field ") + key);
  }

  const auto& dtype = entry["dtype"];
  if (!dtype.is_string()) fail(file, name, "dtype: expected a string, found " + dtype.dump());
  RawEntry raw{name, DType::u8, {}, 0, 0};
  try {
    raw.dtype = parse_dtype(dtype.get<std::string>());
  } catch (const std::invalid_argument& error) {
    fail(file, name, error.what());
  }

  const auto& shape = entry["shape"];
  if (!shape.is_array()) fail(file, name, "shape: expected a list, found " + shape.dump());
  uint64_t numel = 1;
  for (const auto& dim : shape) {
    const uint64_t size = read_count(file, name + ": shape", dim);
    if (size > uint64_t(INT64_MAX) || (size != 0 && numel > uint64_t(INT64_MAX) / size)) {
      fail(file, name, "shape " + shape.dump() + " is too large");
    }
    numel *= size;
    raw.shape.push_back(int64_t(size));
  }

  const auto& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    fail(file, name, "data_offsets: expected [begin, end], found " + offsets.dump());
  }
  raw.begin = read_count(file, name + ": data_offsets", offsets[0]);
  raw.end = read_count(file, name + ": data_offsets", offsets[1]);
  if (raw.end < raw.begin) fail(file, name, "data_offsets " + offsets.dump() + " end before begin");

  const uint64_t element_size = dtype_size(raw.dtype);
  if (numel > UINT64_MAX / element_size || raw.end - raw.begin != numel * element_size) {
    fail(file, name,
         "data_offsets " + offsets.dump() + " span " + std::to_string(raw.end - raw.begin) +
             " bytes, but shape " + shape.dump() + " of " + dtype_name(raw.dtype) + " needs " +
             std::to_string(numel * element_size));
  }
  return raw;
}

}  // namespace

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32:
    case DType::u32:
      return 4;
    case DType::f16:
    case DType::bf16:
      return 2;
    case DType::u8:
      return 1;
  }
  return 1;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "F32";
    case DType::f16:
      return "F16";
    case DType::bf16:
      return "BF16";
    case DType::u32:
      return "U32";
    case DType::u8:
      return "U8";
  }
  return "?";
}

DType parse_dtype(const std::string& name) {
  if (name == "F32") return DType::f32;
  if (name == "F16") return DType::f16;
  if (name == "BF16") return DType::bf16;
  if (name == "U32") return DType::u32;
  if (name == "U8" || name == "F8_E8M0") return DType::u8;
  throw std::invalid_argument("unsupported dtype " + name +
                              " (supported: F32, F16, BF16, U32, U8, F8_E8M0)");
}

int64_t Tensor::numel() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

std::string Tensor::shape_string() const { return shape_to_string(shape); }

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path)
    : file_(std::make_unique<MappedFile>(path)) {
  // Layout: u64 little-endian header length N, N bytes of JSON, then the data block that
  // data_offsets index into.
  const size_t file_size = file_->size();
  if (file_size < 8) {
    fail(path, "header", "file is " + std::to_string(file_size) +
                             " bytes, too short for the 8-byte header length");
  }
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | file_->data()[i];
  if (header_length > kMaxSafetensorsHeaderBytes) {
    fail(path, "header", "header length " + std::to_string(header_length) + " exceeds the " +
                             std::to_string(kMaxSafetensorsHeaderBytes) + "-byte limit");
  }
  if (header_length > file_size - 8) {
    fail(path, "header", "header length " + std::to_string(header_length) +
                             " runs past the end of the file (" + std::to_string(file_size) +
                             " bytes); the file is truncated or not safetensors");
  }

  const char* header_text = reinterpret_cast<const char*>(file_->data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text, header_text + header_length);
  } catch (const nlohmann::json::parse_error& error) {
    fail(path, "header", std::string("not valid JSON: ") + error.what());
  }
  if (!header.is_object()) fail(path, "header", "expected a JSON object, found " + header.dump());

  const uint8_t* data_block = file_->data() + 8 + header_length;
  const uint64_t data_size = file_size - 8 - header_length;
  std::vector<RawEntry> entries;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      // mx.save_safetensors writes null when there is no metadata.
      if (entry.is_null()) continue;
      if (!entry.is_object()) fail(path, name, "expected an object, found " + entry.dump());
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          fail(path, name + "." + key, "expected a string, found " + value.dump());
        }
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    RawEntry raw = parse_entry(path, name, entry);
    if (raw.end > data_size) {
      fail(path, name,
           "data_offsets [" + std::to_string(raw.begin) + ", " + std::to_string(raw.end) +
               "] run past the end of the data (" + std::to_string(data_size) +
               " bytes); the file is truncated or its header is wrong");
    }
    entries.push_back(std::move(raw));
  }

  std::sort(entries.begin(), entries.end(),
            [](const RawEntry& a, const RawEntry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].begin < entries[i - 1].end) {
      fail(path, entries[i].name,
           "data_offsets begin at " + std::to_string(entries[i].begin) + ", inside " +
               entries[i - 1].name + " [" + std::to_string(entries[i - 1].begin) + ", " +
               std::to_string(entries[i - 1].end) + "]");
    }
  }

  size_t realigned_bytes = 0;
  const std::string file_name = path.filename().string();
  for (auto& raw : entries) {
    Tensor tensor;
    tensor.name = raw.name;
    tensor.dtype = raw.dtype;
    tensor.shape = std::move(raw.shape);
    tensor.nbytes = size_t(raw.end - raw.begin);
    tensor.file = file_name;
    const uint8_t* bytes = data_block + raw.begin;
    if (reinterpret_cast<uintptr_t>(bytes) % dtype_size(tensor.dtype) != 0) {
      auto copy = std::make_unique<uint64_t[]>((tensor.nbytes + 7) / 8);
      std::memcpy(copy.get(), bytes, tensor.nbytes);
      bytes = reinterpret_cast<const uint8_t*>(copy.get());
      realigned_.push_back(std::move(copy));
      realigned_bytes += tensor.nbytes;
    }
    tensor.data = bytes;
    tensors_.emplace(tensor.name, std::move(tensor));
  }
  if (!realigned_.empty()) {
    MXG_LOG_DEBUG("%s: copied %zu misaligned tensors (%zu bytes) into aligned memory",
                  path.c_str(), realigned_.size(), realigned_bytes);
  }
}

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleShardName = "model.safetensors";

// Checks that a shard file name from the index stays inside the bundle folder.
void check_shard_name(const std::filesystem::path& index_path, const std::string& tensor,
                      const std::string& shard) {
  const std::filesystem::path shard_path(shard);
  if (shard.empty() || shard_path.is_absolute() || shard_path.has_parent_path() ||
      shard == "." || shard == "..") {
    fail(index_path, "weight_map." + tensor,
         "shard name \"" + shard + "\" must be a plain file name inside the bundle folder");
  }
}

}  // namespace

TensorStore TensorStore::open(const std::filesystem::path& bundle_dir) {
  TensorStore store;
  store.dir_ = bundle_dir;
  const auto index_path = bundle_dir / kIndexName;

  if (!std::filesystem::exists(index_path)) {
    const auto single_path = bundle_dir / kSingleShardName;
    if (!std::filesystem::exists(single_path)) {
      throw std::runtime_error(bundle_dir.string() + ": no " + kIndexName + " and no " +
                               kSingleShardName + "; not a safetensors bundle");
    }
    store.shards_.push_back(std::make_unique<SafetensorsFile>(single_path));
    for (const auto& [name, tensor] : store.shards_.back()->tensors()) {
      store.by_name_[name] = &tensor;
    }
    return store;
  }

  const nlohmann::json index = read_json_file(index_path);
  if (!index.is_object()) fail(index_path, "index", "expected a JSON object");
  const JsonFields fields(index, index_path.string(), "");
  const JsonFields weight_map = fields.require_object("weight_map");
  if (auto metadata = fields.optional_object("metadata")) {
    for (const auto& [key, value] : metadata->object().items()) {
      store.index_metadata_[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
  }

  // Shard file -> tensor names the index places there, in file order.
  std::map<std::string, std::vector<std::string>> names_by_shard;
  for (const auto& [tensor, shard] : weight_map.object().items()) {
    if (!shard.is_string()) {
      fail(index_path, "weight_map." + tensor, "expected a shard file name, found " + shard.dump());
    }
    check_shard_name(index_path, tensor, shard.get<std::string>());
    names_by_shard[shard.get<std::string>()].push_back(tensor);
  }
  if (names_by_shard.empty()) fail(index_path, "weight_map", "lists no tensors");

  for (const auto& [shard_name, names] : names_by_shard) {
    const auto shard_path = bundle_dir / shard_name;
    if (!std::filesystem::exists(shard_path)) {
      fail(index_path, "weight_map." + names.front(),
           "shard " + shard_name + " not found in " + bundle_dir.string());
    }
    auto shard = std::make_unique<SafetensorsFile>(shard_path);
    for (const auto& name : names) {
      auto it = shard->tensors().find(name);
      if (it == shard->tensors().end()) {
        fail(shard_path, name, "missing from this shard, but " + std::string(kIndexName) +
                                   " places it here");
      }
      store.by_name_[name] = &it->second;
    }
    // Tensors of a shard that the index does not list stay reachable by name, because mlx-vlm
    // (0.7.10, utils.py) loads every *.safetensors file of the folder, listed or not.
    for (const auto& [name, tensor] : shard->tensors()) store.by_name_.emplace(name, &tensor);
    store.shards_.push_back(std::move(shard));
  }
  return store;
}

const Tensor* TensorStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const Tensor& TensorStore::get(const std::string& name) const {
  const Tensor* tensor = find(name);
  if (tensor == nullptr) throw std::runtime_error(dir_.string() + ": missing tensor " + name);
  return *tensor;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> result;
  result.reserve(by_name_.size());
  for (const auto& [name, tensor] : by_name_) result.push_back(name);
  return result;
}

size_t TensorStore::total_bytes() const {
  size_t total = 0;
  for (const auto& shard : shards_) total += shard->file_size();
  return total;
}

}  // namespace mxgemma
