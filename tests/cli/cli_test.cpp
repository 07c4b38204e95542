// The mxgemma command end to end on the tiny fixture bundle, bad input included.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/cli/cli_runner.h"
#include "util/npy.h"

namespace {

using mxgemma::test::CommandResult;
using mxgemma::test::run_cli;
using mxgemma::test::tiny_bundle;

TEST(Cli, RunGeneratesAndPrintsStats) {
  const CommandResult result = run_cli("run -m " + tiny_bundle() + " -p hello --max-tokens 8 --temperature 0");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("decode"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("time to first token"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("peak memory"), std::string::npos) << result.err;
}

TEST(Cli, GreedyRunIsRepeatable) {
  const std::string arguments = "run -m " + tiny_bundle() + " -p 'the sea' --max-tokens 12 --temperature 0";
  const CommandResult first = run_cli(arguments);
  const CommandResult second = run_cli(arguments);
  ASSERT_EQ(first.exit_code, 0);
  EXPECT_FALSE(first.out.empty());
  EXPECT_EQ(first.out, second.out);
}

TEST(Cli, TokenizeDetokenizeRoundTrip) {
  const CommandResult ids = run_cli("tokenize -m " + tiny_bundle() + " --no-bos", "hello world");
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  const nlohmann::json parsed = nlohmann::json::parse(ids.out);
  ASSERT_TRUE(parsed.is_array());
  ASSERT_FALSE(parsed.empty());
  const CommandResult text = run_cli("detokenize -m " + tiny_bundle(), parsed.dump());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out, "hello world\n");
}

TEST(Cli, TokenizeAddsBosByDefault) {
  const CommandResult ids = run_cli("tokenize -m " + tiny_bundle() + " --text hi");
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  EXPECT_EQ(nlohmann::json::parse(ids.out).at(0).get<int>(), 2);
}

TEST(Cli, LogitsWritesNpyOfEveryPosition) {
  const std::filesystem::path out = std::filesystem::temp_directory_path() / "mxgemma_cli_logits.npy";
  const CommandResult result = run_cli("logits -m " + tiny_bundle() + " --tokens 2,10,11,12 --out " + out.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const mxgemma::NpyArray logits = mxgemma::read_npy(out);
  ASSERT_EQ(logits.shape.size(), 2u);
  EXPECT_EQ(logits.shape[0], 4);
}

TEST(Cli, LogitsTopPrintsJson) {
  const CommandResult result = run_cli("logits -m " + tiny_bundle() + " --tokens 2,10 --top 3");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json parsed = nlohmann::json::parse(result.out);
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[1].at("top").size(), 3u);
}

TEST(Cli, MissingBundleIsOneLineError) {
  const CommandResult result = run_cli("run -m /nonexistent/bundle -p hi");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("/nonexistent/bundle"), std::string::npos) << result.err;
}

TEST(Cli, BadTokenListIsRejected) {
  const CommandResult result = run_cli("logits -m " + tiny_bundle() + " --tokens 2,x,3 --top 1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("\"x\" is not a token id"), std::string::npos) << result.err;
}

TEST(Cli, TokenIdOutsideVocabularyIsRejected) {
  const CommandResult result = run_cli("logits -m " + tiny_bundle() + " --tokens 2,99999999 --top 1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("outside the vocabulary"), std::string::npos) << result.err;
}

TEST(Cli, DetokenizeRejectsNonArray) {
  const CommandResult result = run_cli("detokenize -m " + tiny_bundle(), "{\"a\": 1}");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("expected a JSON array"), std::string::npos) << result.err;
}

TEST(Cli, PromptLongerThanContextIsRejected) {
  const CommandResult result = run_cli("run -m " + tiny_bundle() + " -p 'a b c d e f g h i j k l m n o p' --ctx-size 4");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("does not fit the context size of 4"), std::string::npos) << result.err;
}

TEST(Cli, InvalidSamplingFlagIsRejected) {
  const CommandResult result = run_cli("run -m " + tiny_bundle() + " -p hi --top-p 0");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("top_p"), std::string::npos) << result.err;
}

TEST(Cli, StopStringEndsGeneration) {
  const CommandResult result = run_cli("run -m " + tiny_bundle() + " -p hi --max-tokens 40 --temperature 0 --stop e");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out.find('e'), std::string::npos) << result.out;
}

TEST(Cli, ChatTemplateKwargsReachTheTemplate) {
  const CommandResult result = run_cli("run -m " + tiny_bundle() +
                                       " -p hi --max-tokens 1 --verbose --chat-template-kwargs '{\"enable_thinking\": true}'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("<|think|>"), std::string::npos) << result.err;
}

TEST(Cli, MalformedChatTemplateKwargsAreRejected) {
  for (const std::string kwargs : {"'[1]'", "'{oops'", "'{\"messages\": []}'"}) {
    const CommandResult result = run_cli("run -m " + tiny_bundle() + " -p hi --chat-template-kwargs " + kwargs);
    EXPECT_EQ(result.exit_code, 1) << kwargs;
    EXPECT_NE(result.err.find("--chat-template-kwargs"), std::string::npos) << result.err;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  }
}

TEST(Cli, EmptyPromptIsRejected) {
  const CommandResult result = run_cli("run -m " + tiny_bundle() + " -p ''");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("the prompt is empty"), std::string::npos) << result.err;
}

TEST(Cli, EmptyStopStringIsRejected) {
  const CommandResult result = run_cli("run -m " + tiny_bundle() + " -p hi --stop ''");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("invalid --stop"), std::string::npos) << result.err;
}

TEST(Cli, BadFlagIsOneLineError) {
  const CommandResult result = run_cli("run -m " + tiny_bundle() + " -p hi --ctx-size 0");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(result.err.rfind("mxgemma: error: ", 0), 0u) << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
}

TEST(Cli, VersionFlagPrintsVersion) {
  const CommandResult result = run_cli("--version");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out.rfind("mxgemma ", 0), 0u) << result.out;
}

TEST(Cli, BundlePathToFileIsRejected) {
  const CommandResult result = run_cli("run -m " + tiny_bundle() + "/config.json -p hi");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("not a folder"), std::string::npos) << result.err;
}

TEST(Cli, BenchRunsOnSmallVocabulary) {
  const CommandResult result = run_cli("bench -m " + tiny_bundle() + " --prompt-tokens 40 --decode-tokens 4 --json");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report.at("prompt_tokens").get<int>(), 40);
  EXPECT_GT(report.at("decode_tokens_per_second").get<double>(), 0.0);
  EXPECT_GT(report.at("decode_bound_tokens_per_second").get<double>(), 0.0);
}

}  // namespace
