// describe_bundle on the converter-made fixtures, checked against values the test reads from the
// bundle's own files, and on broken copies, where each problem must appear as a finding that names
// the file, tensor or field at fault.
#include "bundle/bundle_facts.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bundle/config.h"
#include "bundle/tensor_table.h"
#include "bundle_test_util.h"

namespace mxgemma {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::read_file;
using testing::ScratchDir;
using testing::write_file;
using testing::write_json;

fs::path generated_fixture(const std::string& name) {
  const fs::path dir = fs::path(MXGEMMA_FIXTURE_DIR) / "generated" / name;
  if (!fs::exists(dir / "config.json")) {
    ADD_FAILURE() << "fixture missing: run scripts/make_fixtures.sh (" << dir.string() << ")";
  }
  return dir;
}

nlohmann::json read_json(const fs::path& path) { return nlohmann::json::parse(read_file(path)); }

// A copy of a fixture in a scratch folder, to be broken by the test.
fs::path copy_fixture(const std::string& name, const ScratchDir& scratch) {
  const fs::path copy = scratch.path() / name;
  fs::copy(generated_fixture(name), copy, fs::copy_options::recursive);
  return copy;
}

// All findings as one text, one per line, for `contains` checks with readable failures.
std::string findings_text(const BundleFacts& facts) {
  std::string text;
  for (const auto& finding : facts.findings) {
    text += (finding.severity == FindingSeverity::error ? "error: " : "warning: ") +
            finding.message + "\n";
  }
  return text;
}

// Passes when one error finding contains every part.
::testing::AssertionResult has_error(const BundleFacts& facts,
                                     const std::vector<std::string>& parts) {
  for (const auto& finding : facts.findings) {
    if (finding.severity != FindingSeverity::error) continue;
    const bool all = std::all_of(parts.begin(), parts.end(), [&](const std::string& part) {
      return finding.message.find(part) != std::string::npos;
    });
    if (all) return ::testing::AssertionSuccess();
  }
  std::string expected_parts;
  for (const auto& part : parts) expected_parts += "\"" + part + "\" ";
  return ::testing::AssertionFailure() << "no error finding contains " << expected_parts << "in:\n"
                                       << findings_text(facts);
}

// Rewrites a shard's header through `edit`, keeping the data block, so offsets stay valid.
void edit_shard_header(const fs::path& path, const std::function<void(nlohmann::json&)>& edit) {
  const std::string bytes = read_file(path);
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | uint8_t(bytes[size_t(i)]);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, length));
  edit(header);
  const std::string text = header.dump();
  write_file(path, testing::safetensors_bytes(text.size(), text, bytes.substr(8 + length)));
}

nlohmann::json shard_header(const fs::path& path) {
  const std::string bytes = read_file(path);
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | uint8_t(bytes[size_t(i)]);
  return nlohmann::json::parse(bytes.substr(8, length));
}

// Facts worked out here from config.json, the index, the shard headers and the side files, to
// compare with describe_bundle.
struct ExpectedFacts {
  int layers = 0;
  int full_layers = 0;
  int hidden_size = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int sliding_window = 0;
  int kv_shared_layers = 0;
  std::string quant_mode;
  int bits = 0;
  int group_size = 0;
  int tensors = 0;
  int scales = 0;
  int biases = 0;
  std::map<std::string, int> other_by_dtype;
  std::set<std::string> shards;
  uint64_t total_size = 0;
  uint64_t shard_bytes = 0;
  int tokenizer_ids = 0;
  int special_tokens = 0;
  uint64_t template_bytes = 0;
};

ExpectedFacts expected_facts(const fs::path& dir) {
  ExpectedFacts expected;
  const nlohmann::json config = read_json(dir / "config.json");
  const nlohmann::json& text = config.contains("text_config") ? config["text_config"] : config;
  expected.layers = text["num_hidden_layers"];
  for (const auto& type : text["layer_types"]) expected.full_layers += type == "full_attention";
  expected.hidden_size = text["hidden_size"];
  expected.heads = text["num_attention_heads"];
  expected.kv_heads = text["num_key_value_heads"];
  expected.head_dim = text["head_dim"];
  expected.vocab_size = text["vocab_size"];
  expected.sliding_window = text["sliding_window"];
  expected.kv_shared_layers = text.value("num_kv_shared_layers", 0);
  expected.quant_mode = config["quantization"]["mode"];
  expected.bits = config["quantization"]["bits"];
  expected.group_size = config["quantization"]["group_size"];

  const nlohmann::json index = read_json(dir / "model.safetensors.index.json");
  expected.total_size = index["metadata"]["total_size"];
  std::set<std::string> quantized_parts;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    ++expected.tensors;
    expected.shards.insert(shard.get<std::string>());
    const auto dot = name.rfind('.');
    const std::string module = name.substr(0, dot);
    const std::string suffix = name.substr(dot);
    if (suffix == ".scales") ++expected.scales;
    if (suffix == ".biases") ++expected.biases;
    if (index["weight_map"].contains(module + ".scales")) quantized_parts.insert(name);
  }
  for (const auto& shard : expected.shards) {
    expected.shard_bytes += fs::file_size(dir / shard);
    const nlohmann::json header = shard_header(dir / shard);
    for (const auto& [name, entry] : header.items()) {
      if (name != "__metadata__" && !quantized_parts.count(name)) {
        ++expected.other_by_dtype[entry["dtype"].get<std::string>()];
      }
    }
  }

  const nlohmann::json tokenizer = read_json(dir / "tokenizer.json");
  int max_id = -1;
  for (const auto& [token, id] : tokenizer["model"]["vocab"].items()) max_id = std::max(max_id, int(id));
  for (const auto& token : tokenizer["added_tokens"]) {
    max_id = std::max(max_id, int(token["id"]));
    expected.special_tokens += token["special"].get<bool>();
  }
  expected.tokenizer_ids = max_id + 1;
  expected.template_bytes = fs::file_size(dir / "chat_template.jinja");
  return expected;
}

void expect_facts_match(const BundleFacts& facts, const ExpectedFacts& expected) {
  EXPECT_EQ(facts.text.num_hidden_layers, expected.layers);
  EXPECT_EQ(facts.text.num_full_attention_layers, expected.full_layers);
  EXPECT_EQ(facts.text.num_sliding_attention_layers, expected.layers - expected.full_layers);
  EXPECT_EQ(facts.text.hidden_size, expected.hidden_size);
  EXPECT_EQ(facts.text.num_attention_heads, expected.heads);
  EXPECT_EQ(facts.text.num_key_value_heads, expected.kv_heads);
  EXPECT_EQ(facts.text.head_dim, expected.head_dim);
  EXPECT_EQ(facts.text.vocab_size, expected.vocab_size);
  EXPECT_EQ(facts.text.sliding_window, expected.sliding_window);
  EXPECT_EQ(facts.text.num_kv_shared_layers, expected.kv_shared_layers);

  EXPECT_TRUE(facts.quantization.present);
  EXPECT_EQ(facts.quantization.mode, expected.quant_mode);
  EXPECT_EQ(facts.quantization.bits, expected.bits);
  EXPECT_EQ(facts.quantization.group_size, expected.group_size);

  EXPECT_EQ(facts.tensors.total, expected.tensors);
  EXPECT_EQ(facts.tensors.quantized, expected.scales);
  EXPECT_EQ(facts.tensors.scales, expected.scales);
  EXPECT_EQ(facts.tensors.biases, expected.biases);
  EXPECT_EQ(facts.tensors.by_dtype, expected.other_by_dtype);

  EXPECT_TRUE(facts.has_index);
  EXPECT_EQ(facts.shards.size(), expected.shards.size());
  ASSERT_TRUE(facts.indexed_bytes.has_value());
  EXPECT_EQ(*facts.indexed_bytes, expected.total_size);
  EXPECT_EQ(facts.shard_file_bytes, expected.shard_bytes);

  EXPECT_TRUE(facts.tokenizer.present);
  EXPECT_EQ(facts.tokenizer.vocab_size, expected.tokenizer_ids);
  EXPECT_EQ(facts.tokenizer.num_special_tokens, expected.special_tokens);
  EXPECT_EQ(facts.chat_template.source, "chat_template.jinja");
  EXPECT_EQ(facts.chat_template.size_bytes, expected.template_bytes);
}

const ModalityFacts* modality(const BundleFacts& facts, const std::string& name) {
  for (const auto& entry : facts.modalities) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Fixtures made by the real converters

TEST(BundleFacts, JangFixtureMatchesItsFiles) {
  const fs::path dir = generated_fixture("tiny-hf");
  const BundleFacts facts = describe_bundle(dir);
  EXPECT_FALSE(facts.has_errors()) << findings_text(facts);
  expect_facts_match(facts, expected_facts(dir));

  const nlohmann::json jang = read_json(dir / "jang_config.json");
  EXPECT_EQ(facts.source_model, jang["source_model"]["name"].get<std::string>());
  EXPECT_EQ(facts.source_architecture, "gemma4_text");
  EXPECT_EQ(facts.model_type, "gemma4");
  EXPECT_EQ(facts.text.model_type, "gemma4_text");
  EXPECT_EQ(facts.layout, "hf_names");
  ASSERT_TRUE(facts.jang_total_weight_bytes.has_value());
  EXPECT_EQ(*facts.jang_total_weight_bytes, jang["runtime"]["total_weight_bytes"].get<uint64_t>());
  // The JANG converter keeps media tensors BF16 and the other 16-bit tensors F16.
  EXPECT_GT(facts.tensors.by_dtype.at("BF16"), 0);
  EXPECT_GT(facts.tensors.by_dtype.at("F16"), 0);

  const nlohmann::json processor = read_json(dir / "processor_config.json");
  EXPECT_EQ(facts.processor.at("image_processor.patch_size"),
            processor["image_processor"]["patch_size"].dump());
  EXPECT_EQ(facts.processor.at("audio_ms_per_token"), processor["audio_ms_per_token"].dump());
  EXPECT_EQ(facts.processor.at("feature_extractor.sampling_rate"),
            processor["feature_extractor"]["sampling_rate"].dump());

  ASSERT_NE(modality(facts, "text"), nullptr);
  EXPECT_EQ(modality(facts, "text")->status, "runs");
  EXPECT_EQ(modality(facts, "vision")->status, "runs");
  EXPECT_EQ(modality(facts, "audio")->status, "runs");
  EXPECT_EQ(modality(facts, "video")->status, "absent");
  EXPECT_TRUE(facts.chat_template.supports_tools);
  EXPECT_TRUE(facts.chat_template.supports_thinking);
}

TEST(BundleFacts, MlxVlmFixturesMatchTheirFiles) {
  for (const char* name : {"tiny-mlxvlm", "tiny-affine", "tiny-affine8"}) {
    SCOPED_TRACE(name);
    const fs::path dir = generated_fixture(name);
    const BundleFacts facts = describe_bundle(dir);
    EXPECT_FALSE(facts.has_errors()) << findings_text(facts);
    expect_facts_match(facts, expected_facts(dir));
    EXPECT_EQ(facts.layout, "mlx_vlm");
    EXPECT_EQ(facts.quantization.key, "quantization");
  }
}

TEST(BundleFacts, AffineFixtureCountsBiases) {
  const BundleFacts facts = describe_bundle(generated_fixture("tiny-affine"));
  EXPECT_GT(facts.tensors.quantized, 0);
  EXPECT_EQ(facts.tensors.biases, facts.tensors.quantized);
}

// The text model of the published bundle quantizes 9 linears per own-KV layer, 7 per KV-shared
// layer, embed_tokens_per_layer and per_layer_model_projection.
TEST(BundleFacts, JangFixtureQuantizedCount) {
  const fs::path dir = generated_fixture("tiny-hf");
  const BundleFacts facts = describe_bundle(dir);
  const int shared = facts.text.num_kv_shared_layers;
  EXPECT_EQ(facts.tensors.quantized, (facts.text.num_hidden_layers - shared) * 9 + shared * 7 + 2);
}

// A gemma3_text bundle as mlx_lm.convert writes it: "model.*" names, affine 4-bit weights with
// biases, quantization and quantization_config, no media.
TEST(BundleFacts, MlxLmGemma3Bundle) {
  ScratchDir scratch;
  const fs::path dir = scratch.path();
  nlohmann::json config = {{"model_type", "gemma3_text"},
                           {"architectures", {"Gemma3ForCausalLM"}},
                           {"_name_or_path", "tiny-gemma3"},
                           {"hidden_size", 64},
                           {"intermediate_size", 128},
                           {"num_hidden_layers", 6},
                           {"num_attention_heads", 2},
                           {"num_key_value_heads", 1},
                           {"head_dim", 32},
                           {"sliding_window", 16},
                           {"sliding_window_pattern", 6},
                           {"query_pre_attn_scalar", 32},
                           {"vocab_size", 96},
                           {"quantization", {{"group_size", 32}, {"bits", 4}, {"mode", "affine"}}}};
  config["quantization_config"] = config["quantization"];
  write_json(dir / "config.json", config);
  write_json(dir / "tokenizer.json", {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}}}}},
                                      {"added_tokens", nlohmann::json::array()}});

  testing::SafetensorsWriter shard;
  int quantized = 0;
  const ModelConfig model = parse_model_config(dir / "config.json");
  for (const auto& spec : model_tensor_table(model, BundleLayout::mlx_lm)) {
    if (spec.kind != TensorKind::linear) {
      shard.add(spec.name, "BF16", spec.shape);
      continue;
    }
    shard.add(spec.name + ".weight", "U32", {spec.shape[0], spec.shape[1] / 8});
    shard.add(spec.name + ".scales", "BF16", {spec.shape[0], spec.shape[1] / 32});
    shard.add(spec.name + ".biases", "BF16", {spec.shape[0], spec.shape[1] / 32});
    ++quantized;
  }
  shard.write(dir / "model.safetensors");

  const BundleFacts facts = describe_bundle(dir);
  EXPECT_FALSE(facts.has_errors()) << findings_text(facts);
  EXPECT_EQ(facts.layout, "mlx_lm");
  EXPECT_EQ(facts.model_type, "gemma3_text");
  EXPECT_EQ(facts.text.model_type, "gemma3_text");
  EXPECT_EQ(facts.name_or_path, "tiny-gemma3");
  EXPECT_EQ(facts.text.num_full_attention_layers, 1);
  EXPECT_EQ(facts.text.full_attention_layers, std::vector<int>{5});
  EXPECT_EQ(facts.tensors.quantized, quantized);
  EXPECT_EQ(facts.tensors.biases, quantized);
  EXPECT_FALSE(facts.has_index);
  ASSERT_EQ(facts.shards.size(), 1u);
  EXPECT_EQ(facts.shards[0].file, "model.safetensors");
  EXPECT_EQ(modality(facts, "text")->status, "runs");
  EXPECT_EQ(modality(facts, "vision")->status, "absent");
  EXPECT_EQ(modality(facts, "audio")->status, "absent");
  // No template anywhere: a warning, since --raw prompts still run.
  EXPECT_FALSE(facts.chat_template.present);
  EXPECT_TRUE(contains(findings_text(facts), "warning: "));
}

// ---------------------------------------------------------------------------------------------
// Broken copies: each problem is a finding naming what is at fault

TEST(BundleFactsFindings, MissingShard) {
  ScratchDir scratch;
  testing::TinyBundleOptions options;
  options.num_shards = 2;
  testing::write_tiny_bundle(scratch.path(), options);
  const std::string shard = "model-00002-of-00002.safetensors";
  fs::remove(scratch.path() / shard);

  const BundleFacts facts = describe_bundle(scratch.path());
  EXPECT_TRUE(facts.has_errors());
  EXPECT_TRUE(has_error(facts, {shard, "not found", "model.safetensors.index.json"}));
  EXPECT_TRUE(has_error(facts, {"missing tensor"}));
  ASSERT_EQ(facts.shards.size(), 2u);
  EXPECT_TRUE(facts.shards[0].present);
  EXPECT_FALSE(facts.shards[1].present);
  // What could be read is still described.
  EXPECT_EQ(facts.text.num_hidden_layers, 5);
  EXPECT_GT(facts.tensors.total, 0);
  EXPECT_EQ(modality(facts, "text")->status, "not loadable");
  // Half the tensors are missing: past a dozen, one line sums up the rest.
  EXPECT_LT(facts.findings.size(), 40u) << findings_text(facts);
  EXPECT_TRUE(has_error(facts, {"more findings of the kind \"missing tensor\""}));
}

TEST(BundleFactsFindings, TruncatedShard) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-hf", scratch);
  const std::string shard = "model-00001-of-00001.safetensors";
  const uint64_t size = fs::file_size(dir / shard);
  fs::resize_file(dir / shard, size - 1000);

  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {shard, std::to_string(size - 1000) + " bytes", "truncated"}));
  EXPECT_EQ(facts.shards.at(0).file_bytes, size - 1000);
  EXPECT_EQ(facts.shards.at(0).data_bytes, size);
}

TEST(BundleFactsFindings, MissingScales) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-hf", scratch);
  const std::string module = "language_model.model.layers.1.mlp.down_proj";
  const std::string shard = "model-00001-of-00001.safetensors";
  edit_shard_header(dir / shard, [&](nlohmann::json& header) {
    ASSERT_TRUE(header.contains(module + ".scales"));
    header.erase(module + ".scales");
  });
  nlohmann::json index = read_json(dir / "model.safetensors.index.json");
  index["weight_map"].erase(module + ".scales");
  write_json(dir / "model.safetensors.index.json", index);

  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {shard, module + ".weight", "without " + module + ".scales"}));
  EXPECT_EQ(facts.tensors.quantized, describe_bundle(generated_fixture("tiny-hf")).tensors.quantized - 1);
}

TEST(BundleFactsFindings, OverrideWithoutScales) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-hf", scratch);
  // embed_tokens stays F16 in this bundle, so an override that quantizes it has no scales to use.
  const std::string module = "language_model.model.embed_tokens";
  nlohmann::json config = read_json(dir / "config.json");
  config["quantization"][module] = {{"group_size", 64}, {"bits", 8}, {"mode", "affine"}};
  write_json(dir / "config.json", config);

  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {module + ".weight", "config.json quantization." + module,
                                "affine, 8 bits, group 64", module + ".scales is missing"}));
  EXPECT_EQ(facts.quantization.overrides.at(module), "affine, 8 bits, group 64");
}

TEST(BundleFactsFindings, IndexNamesAbsentTensor) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-mlxvlm", scratch);
  nlohmann::json index = read_json(dir / "model.safetensors.index.json");
  const std::string shard = index["weight_map"].begin().value();
  index["weight_map"]["language_model.model.layers.9.ghost.weight"] = shard;
  index["weight_map"]["language_model.model.norm.weight"] = "model-00009-of-00009.safetensors";
  write_json(dir / "model.safetensors.index.json", index);

  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {"model.safetensors.index.json",
                                "language_model.model.layers.9.ghost.weight", "not found in " + shard}));
  EXPECT_TRUE(has_error(facts, {"model-00009-of-00009.safetensors", "not found"}));
}

TEST(BundleFactsFindings, MalformedConfig) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-hf", scratch);
  write_file(dir / "config.json", "{\"model_type\": \"gemma4\", \"text_config\": {");

  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {(dir / "config.json").string(), "invalid JSON"}));
  // The weights, tokenizer and template are described all the same.
  EXPECT_EQ(facts.tensors.total, expected_facts(generated_fixture("tiny-hf")).tensors);
  EXPECT_TRUE(facts.tokenizer.present);
  EXPECT_TRUE(facts.chat_template.present);
  EXPECT_EQ(modality(facts, "text")->status, "not loadable");
}

TEST(BundleFactsFindings, InvalidConfigField) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-hf", scratch);
  nlohmann::json config = read_json(dir / "config.json");
  config["text_config"]["hidden_size"] = "wide";
  write_json(dir / "config.json", config);

  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {"config.json", "text_config.hidden_size"}));
  // The other fields are still read as they are.
  EXPECT_EQ(facts.text.num_hidden_layers, config["text_config"]["num_hidden_layers"].get<int>());
  EXPECT_EQ(facts.text.hidden_size, 0);
}

TEST(BundleFactsFindings, UnknownArchitecture) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-mlxvlm", scratch);
  nlohmann::json config = read_json(dir / "config.json");
  config["model_type"] = "llama";
  write_json(dir / "config.json", config);

  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {"config.json", "model_type", "llama"}));
  EXPECT_EQ(facts.model_type, "llama");
}

TEST(BundleFactsFindings, ShapeAndDtypeMismatch) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-mlxvlm", scratch);
  const std::string norm = "language_model.model.norm.weight";
  const std::string scales = "language_model.model.layers.0.self_attn.q_proj.scales";
  edit_shard_header(dir / "model.safetensors", [&](nlohmann::json& header) {
    ASSERT_TRUE(header.contains(norm));
    ASSERT_TRUE(header.contains(scales));
    // The norm keeps its bytes in another shape. The scales keep theirs as BF16 in half the columns.
    const int64_t width = header[norm]["shape"][0];
    header[norm]["shape"] = {2, width / 2};
    header[scales]["dtype"] = "BF16";
    header[scales]["shape"] = {header[scales]["shape"][0], header[scales]["shape"][1].get<int64_t>() / 2};
  });

  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {"model.safetensors", norm, "expected shape"}));
  EXPECT_TRUE(has_error(facts, {"model.safetensors", scales, "expected dtype U8, found BF16"}));
}

TEST(BundleFactsFindings, HeaderByteCountMismatch) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-mlxvlm", scratch);
  const std::string norm = "language_model.model.norm.weight";
  edit_shard_header(dir / "model.safetensors", [&](nlohmann::json& header) {
    header[norm]["shape"] = {header[norm]["shape"][0].get<int64_t>() * 2};
  });
  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {"model.safetensors", norm, "data_offsets span"}));
}

TEST(BundleFactsFindings, NoWeightsAtAll) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-mlxvlm", scratch);
  fs::remove(dir / "model.safetensors");
  fs::remove(dir / "model.safetensors.index.json");
  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {"no model.safetensors.index.json and no model.safetensors"}));
}

TEST(BundleFactsFindings, MissingTokenizer) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-mlxvlm", scratch);
  fs::remove(dir / "tokenizer.json");
  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(has_error(facts, {(dir / "tokenizer.json").string(), "not found"}));
  EXPECT_FALSE(facts.tokenizer.present);
}

TEST(BundleFactsFindings, EmptyShard) {
  ScratchDir scratch;
  testing::TinyBundleOptions options;
  options.num_shards = 1;
  testing::write_tiny_bundle(scratch.path(), options);
  testing::SafetensorsWriter empty;
  empty.write(scratch.path() / "model.safetensors");

  const BundleFacts facts = describe_bundle(scratch.path());
  EXPECT_TRUE(has_error(facts, {scratch.path().string(), "the shards contain no tensors"}));
  EXPECT_EQ(facts.tensors.total, 0);
}

TEST(BundleFacts, MissingFolderThrows) {
  EXPECT_THROW(describe_bundle("/nonexistent/mxgemma/bundle"), std::runtime_error);
}

// ---------------------------------------------------------------------------------------------
// Template detection, card and JSON

TEST(BundleFacts, TemplateWithoutToolsOrThinking) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-mlxvlm", scratch);
  write_file(dir / "chat_template.jinja",
             "{% for message in messages %}<start_of_turn>{{ message['content'] }}<end_of_turn>"
             "{% endfor %}");
  const BundleFacts facts = describe_bundle(dir);
  EXPECT_TRUE(facts.chat_template.present);
  EXPECT_FALSE(facts.chat_template.supports_tools);
  EXPECT_FALSE(facts.chat_template.supports_thinking);
  EXPECT_EQ(facts.chat_template.size_bytes, fs::file_size(dir / "chat_template.jinja"));
}

TEST(BundleFacts, TemplateFromTokenizerConfig) {
  ScratchDir scratch;
  testing::write_tiny_bundle(scratch.path());
  write_json(scratch.path() / "tokenizer.json",
             {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}}}}},
              {"added_tokens", {{{"id", 2}, {"content", "<bos>"}, {"special", true}}}}});
  const BundleFacts facts = describe_bundle(scratch.path());
  EXPECT_FALSE(facts.has_errors()) << findings_text(facts);
  EXPECT_EQ(facts.tokenizer.vocab_size, 3);
  EXPECT_EQ(facts.tokenizer.num_special_tokens, 1);
  EXPECT_EQ(facts.chat_template.source, "tokenizer_config.json");
  EXPECT_EQ(facts.chat_template.size_bytes, std::string("{{ bos_token }}from tokenizer_config").size());
  EXPECT_EQ(facts.tokenizer.eos_token, "<eos>");
  EXPECT_TRUE(facts.tokenizer.add_bos_token);
}

TEST(BundleFacts, CardMarkdown) {
  const fs::path dir = generated_fixture("tiny-hf");
  const BundleFacts facts = describe_bundle(dir);
  const ExpectedFacts expected = expected_facts(dir);
  const std::string card = model_card_markdown(facts);
  EXPECT_TRUE(contains(card, "| Field | Value |"));
  EXPECT_TRUE(contains(card, "| Quantized tensors | " + std::to_string(expected.scales) + " weights with " +
                                 std::to_string(expected.scales) + " .scales sidecars |"));
  EXPECT_TRUE(contains(card, "| Quantization | mxfp4, 4 bits, group 32"));
  EXPECT_TRUE(contains(card, "| Shards | 1, with model.safetensors.index.json |"));
  EXPECT_TRUE(contains(card, "| Indexed weight bytes | " + std::to_string(expected.total_size) + " bytes"));
  EXPECT_TRUE(contains(card, "| Text layers | " + std::to_string(expected.layers) + " ("));
  EXPECT_TRUE(contains(card, "| Modalities | text: runs; vision: runs; audio: runs;"));
  EXPECT_TRUE(contains(card, "mxgemma run -m tiny-hf"));
  EXPECT_FALSE(contains(card, "## Findings"));
  EXPECT_FALSE(contains(card, dir.string()));
}

TEST(BundleFacts, CardListsFindings) {
  ScratchDir scratch;
  const fs::path dir = copy_fixture("tiny-hf", scratch);
  fs::remove(dir / "tokenizer.json");
  const std::string card = model_card_markdown(describe_bundle(dir));
  EXPECT_TRUE(contains(card, "## Findings"));
  EXPECT_TRUE(contains(card, "- error: " + (dir / "tokenizer.json").string() + ": not found"));
}

TEST(BundleFacts, JsonMatchesFacts) {
  const fs::path dir = generated_fixture("tiny-affine");
  const BundleFacts facts = describe_bundle(dir);
  const nlohmann::ordered_json json = bundle_facts_json(facts);
  EXPECT_EQ(json["consistent"], true);
  EXPECT_EQ(json["tensors"]["quantized"], facts.tensors.quantized);
  EXPECT_EQ(json["tensors"]["biases"], facts.tensors.biases);
  EXPECT_EQ(json["quantization"]["mode"], "affine");
  EXPECT_EQ(json["text"]["num_hidden_layers"], facts.text.num_hidden_layers);
  EXPECT_EQ(json["indexed_bytes"], *facts.indexed_bytes);
  EXPECT_EQ(json["shards"].size(), facts.shards.size());
  EXPECT_EQ(json["modalities"]["text"]["status"], "runs");
  const nlohmann::json processor = read_json(dir / "processor_config.json");
  EXPECT_EQ(json["processor"]["image_seq_length"], processor["image_seq_length"]);
  EXPECT_EQ(json["findings"].size(), facts.findings.size());
  // Keys keep the order of the card.
  EXPECT_EQ(json.begin().key(), "bundle");
}

}  // namespace
}  // namespace mxgemma
