// mxgemma inspect: the card's table as text and JSON, findings, and the exit status (0 consistent,
// 1 inconsistent, 2 bad command line).
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_runner.h"

namespace mxgemma {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Quantized weights of a bundle, counted from its index: one per ".scales" entry.
int count_scales(const fs::path& dir) {
  int count = 0;
  const nlohmann::json index = read_json(dir / "model.safetensors.index.json");
  for (const auto& [name, shard] : index["weight_map"].items()) {
    count += name.size() > 7 && name.compare(name.size() - 7, 7, ".scales") == 0;
  }
  return count;
}

// A copy of the tiny bundle with `file` removed, in this test's scratch folder.
fs::path broken_copy(const std::string& name, const std::string& file) {
  const fs::path copy = test::scratch_dir() / name;
  fs::remove_all(copy);
  fs::copy(test::tiny_bundle(), copy, fs::copy_options::recursive);
  fs::remove(copy / file);
  return copy;
}

TEST(InspectCommand, TextTable) {
  const fs::path dir = test::tiny_bundle();
  const auto result = run_cli("inspect " + dir.string());
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const int scales = count_scales(dir);
  EXPECT_TRUE(contains(result.out, "Quantized tensors     " + std::to_string(scales) +
                                       " weights with " + std::to_string(scales) + " .scales"))
      << result.out;
  EXPECT_TRUE(contains(result.out, "Architecture          gemma4")) << result.out;
  EXPECT_TRUE(contains(result.out, "Quantization          mxfp4, 4 bits, group 32")) << result.out;
  EXPECT_TRUE(contains(result.out, "No findings")) << result.out;
}

TEST(InspectCommand, JsonOutput) {
  const fs::path dir = test::tiny_bundle();
  const auto result = run_cli("inspect --json " + dir.string());
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json json = nlohmann::json::parse(result.out);
  const nlohmann::json config = read_json(dir / "config.json");
  const nlohmann::json index = read_json(dir / "model.safetensors.index.json");
  EXPECT_EQ(json["consistent"], true);
  EXPECT_EQ(json["tensors"]["quantized"], count_scales(dir));
  EXPECT_EQ(json["tensors"]["total"], index["weight_map"].size());
  EXPECT_EQ(json["indexed_bytes"], index["metadata"]["total_size"]);
  EXPECT_EQ(json["text"]["num_hidden_layers"], config["text_config"]["num_hidden_layers"]);
  EXPECT_EQ(json["text"]["hidden_size"], config["text_config"]["hidden_size"]);
  EXPECT_EQ(json["quantization"]["group_size"], config["quantization"]["group_size"]);
  EXPECT_EQ(json["modalities"]["vision"]["status"], "runs");
  EXPECT_TRUE(json["findings"].empty());
}

TEST(InspectCommand, InconsistentBundleExitsOne) {
  const fs::path dir = broken_copy("no-shard", "model-00001-of-00001.safetensors");
  const auto result = run_cli("inspect " + dir.string());
  EXPECT_EQ(result.exit_code, 1);
  // The table is printed all the same, then the findings.
  EXPECT_TRUE(contains(result.out, "Text layers")) << result.out;
  EXPECT_TRUE(contains(result.out, "error: " + (dir / "model-00001-of-00001.safetensors").string() +
                                       ": not found"))
      << result.out;
}

TEST(InspectCommand, InconsistentBundleJson) {
  const fs::path dir = broken_copy("no-tokenizer", "tokenizer.json");
  const auto result = run_cli("inspect --json " + dir.string());
  EXPECT_EQ(result.exit_code, 1);
  const nlohmann::json json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["consistent"], false);
  ASSERT_FALSE(json["findings"].empty());
  EXPECT_EQ(json["findings"][0]["severity"], "error");
  EXPECT_TRUE(contains(json["findings"][0]["message"].get<std::string>(), "tokenizer.json: not found"));
}

TEST(InspectCommand, BadCommandLine) {
  EXPECT_EQ(run_cli("inspect").exit_code, 2);
  EXPECT_EQ(run_cli("inspect --no-such-flag " + test::tiny_bundle()).exit_code, 2);
  const auto missing = run_cli("inspect /nonexistent/mxgemma-bundle");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(contains(missing.err, "/nonexistent/mxgemma-bundle")) << missing.err;
}

}  // namespace
}  // namespace mxgemma
