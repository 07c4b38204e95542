// convert_checkpoint end to end: the tiny Gemma 4 checkpoint against the JANG converter's bundle
// of it (fixtures/generated/tiny-hf, quantized by MLX on a CPU), a synthetic gemma3_text
// checkpoint in mlx-lm's layout, shards, overrides, and bad input.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "bundle/safetensors.h"
#include "convert/convert.h"
#include "kernels/thread_pool.h"
#include "model/gemma4_text.h"
#include "util/half.h"

namespace mxgemma {
namespace {
namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(MXGEMMA_FIXTURE_DIR) / "generated";
const fs::path kTinySource = kFixtures / "tiny-source";

fs::path scratch_root() {
  return fs::temp_directory_path() / ("mxgemma_convert_" + std::to_string(::getpid()));
}

// Removes this process's scratch folder after the last test.
class ScratchCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(scratch_root(), ignored);
  }
};
const auto* const kScratchCleanup = ::testing::AddGlobalTestEnvironment(new ScratchCleanup);

fs::path scratch(const std::string& name) {
  const fs::path dir = scratch_root();
  fs::create_directories(dir);
  const fs::path path = dir / name;
  fs::remove_all(path);
  return path;
}

ConvertOptions cpu_rounding() {
  ConvertOptions options;
  options.rounding = MxRounding::cpu;
  return options;
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream file(path);
  return nlohmann::json::parse(file);
}

// Leftovers of a conversion beside `dst`: the temporary folder must never survive.
std::vector<std::string> partial_folders(const fs::path& dst) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dst.parent_path())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("." + dst.filename().string() + ".", 0) == 0) found.push_back(name);
  }
  return found;
}

struct SourceTensor {
  std::string name;
  std::string dtype;  // safetensors spelling, any string
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// A safetensors file written by hand, so tests can hold dtypes the project's writer rejects.
void write_safetensors(const fs::path& path, const std::vector<SourceTensor>& tensors) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const SourceTensor& tensor : tensors) {
    header[tensor.name] = {{"dtype", tensor.dtype},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + tensor.bytes.size()}}};
    offset += tensor.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream file(path, std::ios::binary);
  const uint64_t size = text.size();
  file.write(reinterpret_cast<const char*>(&size), 8);
  file << text;
  for (const SourceTensor& tensor : tensors) {
    file.write(reinterpret_cast<const char*>(tensor.bytes.data()), static_cast<std::streamsize>(tensor.bytes.size()));
  }
}

SourceTensor random_f32(const std::string& name, std::vector<int64_t> shape, std::mt19937& rng) {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& value : values) value = normal(rng);
  SourceTensor tensor{name, "F32", std::move(shape), std::vector<uint8_t>(values.size() * 4)};
  std::memcpy(tensor.bytes.data(), values.data(), tensor.bytes.size());
  return tensor;
}

// A 2-layer Gemma 3 text checkpoint with Hugging Face names and random F32 weights.
fs::path make_gemma3_checkpoint(const std::string& name) {
  const fs::path dir = scratch(name);
  fs::create_directories(dir);
  const nlohmann::json config = {
      {"architectures", {"Gemma3ForCausalLM"}}, {"model_type", "gemma3_text"},
      {"hidden_size", 64},  {"intermediate_size", 128}, {"num_hidden_layers", 2},
      {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"head_dim", 32},
      {"vocab_size", 96}, {"sliding_window", 16}, {"query_pre_attn_scalar", 32},
      {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"max_position_embeddings", 512}};
  std::ofstream(dir / "config.json") << config.dump(2);
  std::ofstream(dir / "tokenizer.json") << "{}";
  std::ofstream(dir / "README.md") << "source card, not copied";

  std::mt19937 rng(7);
  std::vector<SourceTensor> tensors = {random_f32("model.embed_tokens.weight", {96, 64}, rng),
                                       random_f32("model.norm.weight", {64}, rng)};
  for (int layer = 0; layer < 2; ++layer) {
    const std::string prefix = "model.layers." + std::to_string(layer) + ".";
    tensors.push_back(random_f32(prefix + "self_attn.q_proj.weight", {64, 64}, rng));
    tensors.push_back(random_f32(prefix + "self_attn.k_proj.weight", {32, 64}, rng));
    tensors.push_back(random_f32(prefix + "self_attn.v_proj.weight", {32, 64}, rng));
    tensors.push_back(random_f32(prefix + "self_attn.o_proj.weight", {64, 64}, rng));
    tensors.push_back(random_f32(prefix + "self_attn.q_norm.weight", {32}, rng));
    tensors.push_back(random_f32(prefix + "self_attn.k_norm.weight", {32}, rng));
    tensors.push_back(random_f32(prefix + "mlp.gate_proj.weight", {128, 64}, rng));
    tensors.push_back(random_f32(prefix + "mlp.up_proj.weight", {128, 64}, rng));
    tensors.push_back(random_f32(prefix + "mlp.down_proj.weight", {64, 128}, rng));
    for (const char* norm : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                             "post_feedforward_layernorm"}) {
      tensors.push_back(random_f32(prefix + norm + ".weight", {64}, rng));
    }
  }
  write_safetensors(dir / "model.safetensors", tensors);
  return dir;
}

TEST(Convert, TinyGemma4MatchesJangBundleBytes) {
  const fs::path dst = scratch("tiny-cpu");
  const ConvertResult result = convert_checkpoint(kTinySource, dst, cpu_rounding());

  const TensorStore ours = TensorStore::open(dst);
  const TensorStore jang = TensorStore::open(kFixtures / "tiny-hf");
  EXPECT_EQ(ours.names(), jang.names());
  for (const std::string& name : jang.names()) {
    const Tensor* mine = ours.find(name);
    ASSERT_NE(mine, nullptr) << name;
    const Tensor& theirs = jang.get(name);
    EXPECT_EQ(mine->dtype, theirs.dtype) << name;
    EXPECT_EQ(mine->shape, theirs.shape) << name;
    ASSERT_EQ(mine->nbytes, theirs.nbytes) << name;
    EXPECT_EQ(std::memcmp(mine->data, theirs.data, theirs.nbytes), 0) << name;
  }
  EXPECT_EQ(result.num_tensors, jang.names().size());
  EXPECT_EQ(result.num_quantized, 52u);
  EXPECT_EQ(result.num_shards, 1u);
  EXPECT_EQ(result.total_bytes, fs::file_size(dst / "model-00001-of-00001.safetensors"));
}

TEST(Convert, TinyGemma4BundleFiles) {
  const fs::path dst = scratch("tiny-files");
  convert_checkpoint(kTinySource, dst, ConvertOptions{});

  const nlohmann::json config = read_json(dst / "config.json");
  const nlohmann::json expected_block = {{"group_size", 32}, {"bits", 4}, {"mode", "mxfp4"}};
  EXPECT_EQ(config["quantization"], expected_block);
  EXPECT_EQ(config["quantization_config"], expected_block);
  EXPECT_EQ(config["model_type"], "gemma4");

  const nlohmann::json index = read_json(dst / "model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["format"], "mxfp4");
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(),
            fs::file_size(dst / "model-00001-of-00001.safetensors"));
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                           "generation_config.json", "processor_config.json"}) {
    ASSERT_TRUE(fs::exists(dst / file)) << file;
    EXPECT_EQ(fs::file_size(dst / file), fs::file_size(kTinySource / file)) << file;
  }
  std::ifstream card_file(dst / "README.md");
  const std::string card((std::istreambuf_iterator<char>(card_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(card.find("tiny-files"), std::string::npos);
  EXPECT_EQ(card.find("partial"), std::string::npos);
  EXPECT_TRUE(partial_folders(dst).empty());
}

// The CPU-rule bundle has the JANG bundle's bytes, so the two must give the same logits. The
// default GPU-rule bundle must load and give finite logits.
TEST(Convert, ConvertedBundleRunsForward) {
  const fs::path cpu_dst = scratch("tiny-forward-cpu");
  const fs::path gpu_dst = scratch("tiny-forward-gpu");
  convert_checkpoint(kTinySource, cpu_dst, cpu_rounding());
  convert_checkpoint(kTinySource, gpu_dst, ConvertOptions{});

  ThreadPool pool(2);
  const std::vector<int32_t> tokens = {2, 5, 9, 30, 41, 7};
  auto logits_of = [&](const fs::path& dir) {
    const Bundle bundle = Bundle::open(dir);
    Gemma4TextModel model(bundle, pool);
    KVCache cache = model.make_cache(64);
    std::vector<float> logits;
    model.forward(tokens, cache, Gemma4TextModel::Logits::last, logits);
    return logits;
  };
  const std::vector<float> converted = logits_of(cpu_dst);
  const std::vector<float> reference = logits_of(kFixtures / "tiny-hf");
  ASSERT_EQ(converted.size(), reference.size());
  EXPECT_EQ(converted, reference);

  const std::vector<float> gpu_rule = logits_of(gpu_dst);
  ASSERT_EQ(gpu_rule.size(), reference.size());
  for (float value : gpu_rule) ASSERT_TRUE(std::isfinite(value));
}

TEST(Convert, ShardsAreCutAndAligned) {
  const fs::path dst = scratch("tiny-shards");
  ConvertOptions options = cpu_rounding();
  options.shard_size = 300'000;
  const ConvertResult result = convert_checkpoint(kTinySource, dst, options);
  EXPECT_GE(result.num_shards, 5u);

  const TensorStore store = TensorStore::open(dst);
  EXPECT_EQ(store.num_shards(), result.num_shards);
  EXPECT_EQ(store.total_bytes(), result.total_bytes);
  const nlohmann::json index = read_json(dst / "model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), result.total_bytes);
  const std::string last = "model-0000" + std::to_string(result.num_shards) + "-of-0000" +
                           std::to_string(result.num_shards) + ".safetensors";
  EXPECT_TRUE(fs::exists(dst / last)) << last;

  // Same tensors as the single-shard JANG bundle.
  const TensorStore jang = TensorStore::open(kFixtures / "tiny-hf");
  EXPECT_EQ(store.names(), jang.names());
  for (const std::string& name : jang.names()) {
    const Tensor& mine = store.get(name);
    ASSERT_EQ(mine.nbytes, jang.get(name).nbytes) << name;
    EXPECT_EQ(std::memcmp(mine.data, jang.get(name).data, mine.nbytes), 0) << name;
  }
}

TEST(Convert, Gemma3TextUsesMlxLmLayout) {
  const fs::path src = make_gemma3_checkpoint("gemma3-source");
  const fs::path dst = scratch("gemma3-bundle");
  const ConvertResult result = convert_checkpoint(src, dst, cpu_rounding());
  EXPECT_EQ(result.model_type, "gemma3_text");
  // 2 layers x 7 linears; the embedding stays 16-bit, as in the published Gemma 4 bundle.
  EXPECT_EQ(result.num_quantized, 14u);

  const TensorStore store = TensorStore::open(dst);
  EXPECT_EQ(store.get("model.embed_tokens.weight").dtype, DType::f16);
  EXPECT_FALSE(store.contains("model.embed_tokens.scales"));
  EXPECT_EQ(store.get("model.layers.1.mlp.down_proj.weight").shape, (std::vector<int64_t>{64, 16}));
  EXPECT_EQ(store.get("model.layers.0.input_layernorm.weight").dtype, DType::f16);
  EXPECT_EQ(store.get("model.norm.weight").dtype, DType::f16);
  EXPECT_FALSE(store.contains("lm_head.weight"));

  const nlohmann::json config = read_json(dst / "config.json");
  EXPECT_EQ(config["quantization"]["mode"], "mxfp4");
  EXPECT_EQ(config["model_type"], "gemma3_text");
  EXPECT_TRUE(fs::exists(dst / "tokenizer.json"));
  std::ifstream card_file(dst / "README.md");
  const std::string card((std::istreambuf_iterator<char>(card_file)), std::istreambuf_iterator<char>());
  EXPECT_EQ(card.find("source card"), std::string::npos);
}

TEST(Convert, Gemma3EmbeddingIsQuantizedOnRequest) {
  const fs::path src = make_gemma3_checkpoint("gemma3-embed-source");
  const fs::path dst = scratch("gemma3-embed-bundle");
  ConvertOptions options = cpu_rounding();
  options.quantize_regex = "embed_tokens";
  const ConvertResult result = convert_checkpoint(src, dst, options);
  // mlx-lm's own choice: the 14 linears and the embedding.
  EXPECT_EQ(result.num_quantized, 15u);
  const TensorStore store = TensorStore::open(dst);
  EXPECT_EQ(store.get("model.embed_tokens.weight").dtype, DType::u32);
  EXPECT_EQ(store.get("model.embed_tokens.weight").shape, (std::vector<int64_t>{96, 8}));
  EXPECT_EQ(store.get("model.embed_tokens.scales").shape, (std::vector<int64_t>{96, 2}));
}

TEST(Convert, AffineModeWritesBiases) {
  const fs::path src = make_gemma3_checkpoint("gemma3-affine-source");
  for (int bits : {4, 8}) {
    const fs::path dst = scratch("gemma3-affine" + std::to_string(bits));
    ConvertOptions options;
    options.mode = QuantMode::affine;
    options.bits = bits;
    convert_checkpoint(src, dst, options);
    const TensorStore store = TensorStore::open(dst);
    const Tensor& weight = store.get("model.layers.0.mlp.up_proj.weight");
    EXPECT_EQ(weight.dtype, DType::u32);
    EXPECT_EQ(weight.shape, (std::vector<int64_t>{128, 64 * bits / 32}));
    EXPECT_EQ(store.get("model.layers.0.mlp.up_proj.scales").dtype, DType::f16);
    EXPECT_EQ(store.get("model.layers.0.mlp.up_proj.biases").shape, (std::vector<int64_t>{128, 1}));
    const nlohmann::json config = read_json(dst / "config.json");
    EXPECT_EQ(config["quantization"]["group_size"], 64);
    EXPECT_EQ(config["quantization"]["bits"], bits);
    EXPECT_EQ(config["quantization"]["mode"], "affine");
  }
}

TEST(Convert, OverridesAndNoQuantization) {
  const fs::path src = make_gemma3_checkpoint("gemma3-override-source");
  const fs::path keep_dst = scratch("gemma3-keep");
  ConvertOptions options;
  options.keep_16bit_regex = R"(\.mlp\.)";
  options.dtype = DType::bf16;
  convert_checkpoint(src, keep_dst, options);
  const TensorStore kept = TensorStore::open(keep_dst);
  EXPECT_EQ(kept.get("model.layers.0.mlp.up_proj.weight").dtype, DType::bf16);
  EXPECT_FALSE(kept.contains("model.layers.0.mlp.up_proj.scales"));
  EXPECT_EQ(kept.get("model.layers.0.self_attn.q_proj.weight").dtype, DType::u32);

  const fs::path none_dst = scratch("gemma3-none");
  ConvertOptions none;
  none.mode = QuantMode::none;
  convert_checkpoint(src, none_dst, none);
  const TensorStore plain = TensorStore::open(none_dst);
  EXPECT_EQ(plain.get("model.embed_tokens.weight").dtype, DType::f16);
  EXPECT_FALSE(read_json(none_dst / "config.json").contains("quantization"));

  const fs::path forced_dst = scratch("tiny-forced");
  ConvertOptions forced = cpu_rounding();
  forced.quantize_regex = R"(embed_tokens\.weight$)";
  const ConvertResult result = convert_checkpoint(kTinySource, forced_dst, forced);
  EXPECT_EQ(result.num_quantized, 53u);
  const TensorStore store = TensorStore::open(forced_dst);
  EXPECT_EQ(store.get("language_model.model.embed_tokens.weight").dtype, DType::u32);
}

TEST(Convert, RejectsBadOptions) {
  ConvertOptions group16;
  group16.group_size = 16;
  EXPECT_THROW(convert_checkpoint(kTinySource, scratch("bad-group"), group16), std::invalid_argument);
  ConvertOptions bits8;
  bits8.bits = 8;
  EXPECT_THROW(convert_checkpoint(kTinySource, scratch("bad-bits"), bits8), std::invalid_argument);
  ConvertOptions bad_regex;
  bad_regex.keep_16bit_regex = "(";
  EXPECT_THROW(convert_checkpoint(kTinySource, scratch("bad-regex"), bad_regex), std::invalid_argument);
  ConvertOptions norm_forced;
  norm_forced.quantize_regex = R"(model\.norm\.weight$)";
  try {
    convert_checkpoint(make_gemma3_checkpoint("gemma3-forced-norm"), scratch("bad-forced"), norm_forced);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("model.norm.weight"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(fs::exists(scratch("bad-forced")));
}

std::string error_of(const fs::path& src, const fs::path& dst, const ConvertOptions& options = {}) {
  try {
    convert_checkpoint(src, dst, options);
  } catch (const std::exception& error) {
    return error.what();
  }
  return "";
}

TEST(Convert, RejectsNonCheckpoints) {
  const fs::path empty = scratch("empty-source");
  fs::create_directories(empty);
  EXPECT_NE(error_of(empty, scratch("out-empty")).find("config.json not found"), std::string::npos);

  const fs::path no_weights = scratch("no-weights");
  fs::create_directories(no_weights);
  fs::copy_file(kTinySource / "config.json", no_weights / "config.json");
  EXPECT_NE(error_of(no_weights, scratch("out-no-weights")).find("no .safetensors"), std::string::npos);

  EXPECT_NE(error_of(scratch("missing-source"), scratch("out-missing")).find("not found"),
            std::string::npos);
}

TEST(Convert, RejectsUnsupportedDtypeAndArchitecture) {
  const fs::path src = make_gemma3_checkpoint("gemma3-i64");
  write_safetensors(src / "model.safetensors",
                    {{"model.embed_tokens.weight", "I64", {2, 2}, std::vector<uint8_t>(32)}});
  const std::string dtype_error = error_of(src, scratch("out-i64"));
  EXPECT_NE(dtype_error.find("model.embed_tokens.weight"), std::string::npos) << dtype_error;
  EXPECT_NE(dtype_error.find("I64"), std::string::npos) << dtype_error;

  const fs::path llama = make_gemma3_checkpoint("llama-source");
  std::ofstream(llama / "config.json") << R"({"model_type": "llama"})";
  const std::string arch_error = error_of(llama, scratch("out-llama"));
  EXPECT_NE(arch_error.find("\"llama\" is not supported"), std::string::npos) << arch_error;
}

TEST(Convert, ExistingDestinationNeedsForce) {
  const fs::path src = make_gemma3_checkpoint("gemma3-force-source");
  const fs::path dst = scratch("existing");
  fs::create_directories(dst);
  std::ofstream(dst / "old.txt") << "old";
  EXPECT_NE(error_of(src, dst).find("--force"), std::string::npos);
  EXPECT_TRUE(fs::exists(dst / "old.txt"));

  ConvertOptions options;
  options.force = true;
  convert_checkpoint(src, dst, options);
  EXPECT_FALSE(fs::exists(dst / "old.txt"));
  EXPECT_TRUE(fs::exists(dst / "model.safetensors.index.json"));
  EXPECT_TRUE(partial_folders(dst).empty());

  EXPECT_NE(error_of(src, src, options).find("contains the source checkpoint"), std::string::npos);
  // A destination that contains the source is never removed, even with --force.
  const fs::path outer = scratch("holds-source");
  fs::create_directories(outer);
  fs::copy(src, outer / "src", fs::copy_options::recursive);
  EXPECT_NE(error_of(outer / "src", outer, options).find("contains the source checkpoint"), std::string::npos);
  const fs::path link = scratch("link-to-outer");
  fs::create_directory_symlink(outer, link);
  EXPECT_NE(error_of(outer / "src", link, options).find("contains the source"), std::string::npos);
  EXPECT_TRUE(fs::exists(outer / "src" / "config.json"));
  EXPECT_NE(error_of(src, "", options).find("destination folder name is empty"), std::string::npos);
}

TEST(Convert, UnwritableDestination) {
  const fs::path src = make_gemma3_checkpoint("gemma3-unwritable-source");
  const fs::path file = scratch("plain-file");
  std::ofstream(file) << "x";
  EXPECT_NE(error_of(src, file / "bundle").find("is a file, not a folder"), std::string::npos);
  // /proc refuses new folders even for root.
  const std::string proc_error = error_of(src, "/proc/mxgemma-bundle");
  EXPECT_NE(proc_error.find("cannot create the temporary output folder"), std::string::npos) << proc_error;
}

// A file size limit makes the shard write fail as a full disk would: the conversion must fail
// with the system's reason and leave neither DST nor the temporary folder.
TEST(Convert, DiskFullLeavesNoBundle) {
  const fs::path dst = scratch("disk-full");
  const fs::path message_path = scratch("disk-full-message.txt");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{200'000, 200'000};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::string message = error_of(kTinySource, dst);
    std::FILE* out = std::fopen(message_path.c_str(), "w");
    if (out != nullptr) {
      std::fputs(message.c_str(), out);
      std::fclose(out);
    }
    ::_exit(message.empty() ? 1 : 0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the conversion did not fail";
  std::ifstream message_file(message_path);
  const std::string message((std::istreambuf_iterator<char>(message_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(dst));
  EXPECT_TRUE(partial_folders(dst).empty());
}

}  // namespace
}  // namespace mxgemma
