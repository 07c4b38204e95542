#include "convert/convert.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "bundle/bundle_facts.h"
#include "convert/float_convert.h"
#include "convert/shard_writer.h"
#include "util/half.h"
#include "util/log.h"

namespace mxgemma {
namespace fs = std::filesystem;
namespace {

// Elements converted per step: bounds the fp16 staging buffer to 32 MiB whatever the tensor size.
constexpr size_t kChunkElements = size_t{16} << 20;

// Files copied from the checkpoint when present. README.md is not among them: the bundle gets
// its own card.
constexpr const char* kSidecarFiles[] = {
    "tokenizer.json",          "tokenizer_config.json",   "tokenizer.model",
    "special_tokens_map.json", "added_tokens.json",       "generation_config.json",
    "chat_template.jinja",     "chat_template.json",      "processor_config.json",
    "preprocessor_config.json", "LICENSE"};

// Removes the folder on destruction unless release() was called.
class TemporaryFolder {
 public:
  explicit TemporaryFolder(fs::path path) : path_(std::move(path)) {}
  ~TemporaryFolder() {
    if (path_.empty()) return;
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;
  const fs::path& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

fs::path sibling_path(const fs::path& dst, const std::string& tag) {
  std::string name = ".";
  name += dst.filename().string();
  name += "." + tag + "-" + std::to_string(::getpid());
  return dst.parent_path() / name;
}

// Whether `inner` is `outer` or a folder below it, after resolving links and "..".
bool is_within(const fs::path& inner, const fs::path& outer) {
  std::error_code error;
  const fs::path a = fs::weakly_canonical(inner, error);
  const fs::path b = fs::weakly_canonical(outer, error);
  auto mismatch = std::mismatch(b.begin(), b.end(), a.begin(), a.end());
  return mismatch.first == b.end();
}

void check_destination(const fs::path& src, const fs::path& dst, bool force) {
  if (dst.empty() || dst.filename().empty()) {
    throw std::invalid_argument("destination \"" + dst.string() + "\" must name a folder");
  }
  const fs::path parent = dst.parent_path();
  if (fs::exists(parent) && !fs::is_directory(parent)) {
    throw std::runtime_error(dst.string() + ": " + parent.string() + " is a file, not a folder");
  }
  if (!fs::is_directory(parent)) {
    throw std::runtime_error(dst.string() + ": parent folder " + parent.string() + " not found");
  }
  // Replacing a destination removes it, so it must not hold the checkpoint being read.
  if (is_within(src, dst)) {
    throw std::invalid_argument(dst.string() + ": destination contains the source checkpoint " + src.string() +
                                "; choose a destination outside it");
  }
  if (!fs::exists(dst)) return;
  if (!force) {
    throw std::runtime_error(dst.string() + ": destination already exists; pass --force to replace it");
  }
  if (!fs::is_directory(dst)) {
    throw std::runtime_error(dst.string() + ": destination exists and is not a folder; remove it first");
  }
}

// Drops the pages of a source range that was read, so the mapped checkpoint does not stay resident.
// Peak memory is then about one chunk of the source and of the output, not the model.
void release_source_pages(const void* data, size_t size) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// Converts count source values to the stored 16-bit format of `planned`.
void convert_16bit(const PlannedTensor& planned, const void* values, size_t count, uint16_t* out) {
  if (planned.storage_dtype == DType::f16) {
    convert_to_fp16(planned.source->dtype, values, count, out);
  } else if (planned.bf16_through_fp16) {
    convert_to_fp16(planned.source->dtype, values, count, out);
    for (size_t i = 0; i < count; ++i) out[i] = float_to_bf16(fp16_to_float(out[i]));
  } else {
    convert_to_bf16(planned.source->dtype, values, count, out);
  }
}

void write_16bit(const PlannedTensor& planned, const ShardEntry& entry, ShardFile& file) {
  const Tensor& source = *planned.source;
  const size_t count = static_cast<size_t>(source.numel());
  const size_t element_size = dtype_size(source.dtype);
  const auto* bytes = static_cast<const uint8_t*>(source.data);

  if (planned.transpose_last_two) {
    // [..., rows, cols] -> [..., cols, rows]; only small conv1d kernels take this path.
    std::vector<uint16_t> values(count), transposed(count);
    convert_16bit(planned, bytes, count, values.data());
    const size_t rows = static_cast<size_t>(source.shape[source.shape.size() - 2]);
    const size_t cols = static_cast<size_t>(source.shape.back());
    for (size_t base = 0; base < count; base += rows * cols) {
      for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < cols; ++c) transposed[base + c * rows + r] = values[base + r * cols + c];
      }
    }
    file.write_at(entry.file_offset, transposed.data(), count * 2);
    return;
  }

  std::vector<uint16_t> buffer(std::min(count, kChunkElements));
  for (size_t start = 0; start < count; start += kChunkElements) {
    const size_t n = std::min(kChunkElements, count - start);
    convert_16bit(planned, bytes + start * element_size, n, buffer.data());
    release_source_pages(bytes + start * element_size, n * element_size);
    file.write_at(entry.file_offset + start * 2, buffer.data(), n * 2);
  }
}

void write_quantized(const PlannedTensor& planned, const std::vector<const ShardEntry*>& entries,
                     const ConvertOptions& options, int group_size, ShardFile& file) {
  const Tensor& source = *planned.source;
  const size_t width = static_cast<size_t>(source.shape.back());
  const size_t rows = static_cast<size_t>(source.numel()) / width;
  const size_t element_size = dtype_size(source.dtype);
  const size_t words_per_row = width * options.bits / 32;
  const size_t groups_per_row = width / group_size;
  const size_t chunk_rows = std::max<size_t>(1, kChunkElements / width);
  const auto* bytes = static_cast<const uint8_t*>(source.data);

  std::vector<uint16_t> values(std::min(rows, chunk_rows) * width);
  std::vector<uint32_t> codes(std::min(rows, chunk_rows) * words_per_row);
  std::vector<uint8_t> e8m0_scales;
  std::vector<uint16_t> affine_scales, affine_biases;
  for (size_t row = 0; row < rows; row += chunk_rows) {
    const size_t n_rows = std::min(chunk_rows, rows - row);
    const size_t n = n_rows * width;
    const size_t n_groups = n_rows * groups_per_row;
    // Weights are rounded to fp16 before quantizing, as the JANG converter does.
    convert_to_fp16(source.dtype, bytes + row * width * element_size, n, values.data());
    release_source_pages(bytes + row * width * element_size, n * element_size);
    if (options.mode == QuantMode::mxfp4) {
      e8m0_scales.resize(n_groups);
      quantize_mxfp4(values.data(), n, options.rounding, codes.data(), e8m0_scales.data());
      file.write_at(entries[1]->file_offset + row * groups_per_row, e8m0_scales.data(), n_groups);
    } else {
      affine_scales.resize(n_groups);
      affine_biases.resize(n_groups);
      quantize_affine(values.data(), n, options.bits, group_size, codes.data(), affine_scales.data(),
                      affine_biases.data());
      file.write_at(entries[1]->file_offset + row * groups_per_row * 2, affine_scales.data(), n_groups * 2);
      file.write_at(entries[2]->file_offset + row * groups_per_row * 2, affine_biases.data(), n_groups * 2);
    }
    file.write_at(entries[0]->file_offset + row * words_per_row * 4, codes.data(),
                  n_rows * words_per_row * 4);
  }
}

void write_text_file(const fs::path& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  file << text;
  file.close();
  if (!file) throw std::runtime_error(path.string() + ": write failed (disk full or not writable?)");
}

// config.json as mlx-lm and mlx-vlm write it: keys sorted, 4-space indent, and the
// `quantization` block repeated as `quantization_config` for Hugging Face tooling.
std::string bundle_config_text(const ConversionPlan& plan, const ConvertOptions& options) {
  nlohmann::json config = plan.config;
  config.erase("quantization");
  config.erase("quantization_config");
  if (options.mode != QuantMode::none) {
    const nlohmann::json block = {{"group_size", plan.group_size},
                                  {"bits", options.bits},
                                  {"mode", quant_mode_name(options.mode)}};
    config["quantization"] = block;
    config["quantization_config"] = block;
  }
  return config.dump(4) + "\n";
}

void copy_sidecars(const fs::path& src, const fs::path& out) {
  for (const char* name : kSidecarFiles) {
    const fs::path from = src / name;
    if (!fs::is_regular_file(from)) continue;
    std::error_code error;
    fs::copy_file(from, out / name, fs::copy_options::overwrite_existing, error);
    if (error) {
      throw std::runtime_error((out / name).string() + ": copy from " + from.string() +
                               " failed: " + error.message());
    }
  }
  if (!fs::exists(src / "tokenizer.json")) {
    MXG_LOG_WARN("convert: %s has no tokenizer.json; the bundle will need one to run",
                 src.string().c_str());
  }
}

// Writes every shard; returns the sum of their sizes.
uint64_t write_shards(const ConversionPlan& plan, const std::vector<ShardLayout>& shards,
                      const ConvertOptions& options, const fs::path& out) {
  std::map<std::string, std::pair<size_t, const ShardEntry*>> where;
  for (size_t i = 0; i < shards.size(); ++i) {
    for (const ShardEntry& entry : shards[i].entries) where[entry.name] = {i, &entry};
  }

  std::unique_ptr<ShardFile> file;
  size_t open_shard = shards.size();
  uint64_t total_bytes = 0;
  for (const PlannedTensor& planned : plan.tensors) {
    std::vector<const ShardEntry*> entries;
    size_t shard = 0;
    for (const OutputTensor& output : planned.outputs) {
      const auto& [shard_index, entry] = where.at(output.name);
      shard = shard_index;
      entries.push_back(entry);
    }
    if (shard != open_shard) {
      if (file) file->finish();
      file = std::make_unique<ShardFile>(out / shards[shard].file_name, shards[shard]);
      open_shard = shard;
      total_bytes += shards[shard].file_size;
    }
    if (planned.action == TensorAction::quantize) {
      write_quantized(planned, entries, options, plan.group_size, *file);
    } else {
      write_16bit(planned, *entries[0], *file);
    }
  }
  if (file) file->finish();
  return total_bytes;
}

std::string index_text(const std::vector<ShardLayout>& shards,
                       const ConvertOptions& options, uint64_t total_bytes) {
  nlohmann::json weight_map = nlohmann::json::object();
  for (const ShardLayout& shard : shards) {
    for (const ShardEntry& entry : shard.entries) weight_map[entry.name] = shard.file_name;
  }
  const std::string format = options.mode == QuantMode::none ? "mlx" : quant_mode_name(options.mode);
  const nlohmann::json index = {{"metadata", {{"format", format}, {"total_size", total_bytes}}},
                                {"weight_map", weight_map}};
  return index.dump(2) + "\n";
}

void move_into_place(TemporaryFolder& temporary, const fs::path& dst) {
  std::error_code error;
  if (fs::exists(dst)) {
    // Replace through a rename of the old folder, so no moment leaves dst half-written.
    const fs::path old = sibling_path(dst, "replaced");
    fs::rename(dst, old, error);
    if (error) throw std::runtime_error(dst.string() + ": cannot move the old bundle aside: " + error.message());
    fs::rename(temporary.path(), dst, error);
    if (error) {
      std::error_code ignored;
      fs::rename(old, dst, ignored);
      throw std::runtime_error(dst.string() + ": rename into place failed: " + error.message());
    }
    temporary.release();
    fs::remove_all(old, error);
    return;
  }
  fs::rename(temporary.path(), dst, error);
  if (error) throw std::runtime_error(dst.string() + ": rename into place failed: " + error.message());
  temporary.release();
}

}  // namespace

ConvertResult convert_checkpoint(const fs::path& src, const fs::path& dst_argument,
                                 const ConvertOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (!fs::is_directory(src)) throw std::runtime_error(src.string() + ": source folder not found");
  if (dst_argument.empty()) throw std::invalid_argument("the destination folder name is empty");
  const fs::path dst = fs::absolute(dst_argument).lexically_normal();

  SourceArchitecture architecture{};
  nlohmann::json config = read_source_config(src, architecture);
  check_source_dtypes(src);
  check_destination(src, dst, options.force);

  const TensorStore store = TensorStore::open(src);
  const ConversionPlan plan = plan_conversion(store, std::move(config), architecture, options);

  std::vector<std::vector<ShardEntry>> groups;
  for (const PlannedTensor& planned : plan.tensors) {
    std::vector<ShardEntry>& group = groups.emplace_back();
    for (const OutputTensor& output : planned.outputs) {
      group.push_back({output.name, output.dtype, output.shape, output.nbytes, 0});
    }
  }
  const std::vector<ShardLayout> shards = layout_shards(groups, options.shard_size, {{"format", "mlx"}});

  std::error_code error;
  TemporaryFolder temporary(sibling_path(dst, "partial"));
  if (!fs::create_directory(temporary.path(), error) || error) {
    const fs::path failed = temporary.path();
    temporary.release();
    throw std::runtime_error(failed.string() + ": cannot create the temporary output folder: " +
                             (error ? error.message() : "it already exists") +
                             "; check that the destination's parent folder is writable");
  }

  const uint64_t total_bytes = write_shards(plan, shards, options, temporary.path());
  write_text_file(temporary.path() / "model.safetensors.index.json",
                  index_text(shards, options, total_bytes));
  write_text_file(temporary.path() / "config.json", bundle_config_text(plan, options));
  copy_sidecars(src, temporary.path());
  BundleFacts facts = describe_bundle(temporary.path());
  facts.dir = dst;  // the card names the bundle, not the temporary folder
  write_text_file(temporary.path() / "README.md", model_card_markdown(facts));
  move_into_place(temporary, dst);

  ConvertResult result;
  result.model_type = plan.model_type;
  for (const PlannedTensor& planned : plan.tensors) result.num_tensors += planned.outputs.size();
  result.num_quantized = plan.num_quantized();
  result.num_shards = shards.size();
  result.total_bytes = total_bytes;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!plan.dropped.empty()) {
    MXG_LOG_INFO("convert: left out %zu unused source tensors (first: %s)", plan.dropped.size(),
                 plan.dropped.front().c_str());
  }
  return result;
}

}  // namespace mxgemma
