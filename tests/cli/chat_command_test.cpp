// mxgemma chat end to end through a pipe on the tiny fixture bundle. Its weights are random, so
// the checks are on structure (stats lines, errors, rendered prompts), never on the reply text.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/cli/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using mxgemma::test::CommandResult;
using mxgemma::test::run_cli;
using mxgemma::test::scratch_dir;
using mxgemma::test::tiny_bundle;
using mxgemma::test::write_scratch;

// Runs `mxgemma chat` on the tiny bundle, greedy and short, with `stdin_text` piped in.
CommandResult run_chat(const std::string& arguments, const std::string& stdin_text) {
  return run_cli("chat -m " + tiny_bundle() + " --temperature 0 --max-tokens 6 " + arguments, stdin_text);
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
  return count;
}

// The debug log of each rendered prompt, in order.
std::vector<std::string> logged_prompts(const std::string& err) {
  std::vector<std::string> prompts;
  const std::string marker = "prompt (";
  size_t at = err.find(marker);
  while (at != std::string::npos) {
    const size_t next = err.find(marker, at + marker.size());
    prompts.push_back(err.substr(at, next == std::string::npos ? std::string::npos : next - at));
    at = next;
  }
  return prompts;
}

TEST(ChatCommand, TwoTurnsThenExit) {
  const CommandResult result = run_chat("--verbose", "hello\nhow are you\n/exit\nnot read\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(count_of(result.err, "time to first token"), 2u) << result.err;
  const std::vector<std::string> prompts = logged_prompts(result.err);
  ASSERT_EQ(prompts.size(), 2u) << result.err;
  // The second turn re-renders the first user message with the new one.
  EXPECT_NE(prompts[1].find("hello"), std::string::npos) << prompts[1];
  EXPECT_NE(prompts[1].find("how are you"), std::string::npos) << prompts[1];
  EXPECT_EQ(result.err.find("not read"), std::string::npos) << result.err;
}

TEST(ChatCommand, EndOfInputEndsCleanly) {
  const CommandResult result = run_chat("", "hello");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(count_of(result.err, "time to first token"), 1u) << result.err;

  const CommandResult empty = run_chat("", "");
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(count_of(empty.err, "time to first token"), 0u) << empty.err;
  EXPECT_EQ(empty.err.find("> "), std::string::npos) << "no prompt marker when stdin is a pipe: " << empty.err;
}

TEST(ChatCommand, ResetKeepsSystemMessage) {
  const CommandResult result = run_chat("--verbose --system 'be brief'", "first question\n/reset\nsecond question\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const std::vector<std::string> prompts = logged_prompts(result.err);
  ASSERT_EQ(prompts.size(), 2u) << result.err;
  EXPECT_NE(prompts[0].find("be brief"), std::string::npos) << prompts[0];
  EXPECT_NE(prompts[1].find("be brief"), std::string::npos) << prompts[1];
  EXPECT_NE(prompts[1].find("second question"), std::string::npos) << prompts[1];
  EXPECT_EQ(prompts[1].find("first question"), std::string::npos) << prompts[1];
}

TEST(ChatCommand, SystemCommandReplacesAndResets) {
  const CommandResult result =
      run_chat("--verbose --system 'old rules'", "first question\n/system new rules\nsecond question\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const std::vector<std::string> prompts = logged_prompts(result.err);
  ASSERT_EQ(prompts.size(), 2u) << result.err;
  EXPECT_NE(prompts[0].find("old rules"), std::string::npos) << prompts[0];
  EXPECT_NE(prompts[1].find("new rules"), std::string::npos) << prompts[1];
  EXPECT_EQ(prompts[1].find("old rules"), std::string::npos) << prompts[1];
  EXPECT_EQ(prompts[1].find("first question"), std::string::npos) << prompts[1];
}

TEST(ChatCommand, UnknownCommandContinues) {
  const CommandResult result = run_chat("", "/frobnicate now\nhello\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("unknown command /frobnicate"), std::string::npos) << result.err;
  EXPECT_EQ(count_of(result.err, "time to first token"), 1u) << result.err;
}

TEST(ChatCommand, ToolResultWithoutPendingCall) {
  const CommandResult result = run_chat("", "/tool-result get_weather {\"temp\": 20}\nhello\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("no tool call is waiting for a result"), std::string::npos) << result.err;
  EXPECT_EQ(count_of(result.err, "time to first token"), 1u) << result.err;
}

TEST(ChatCommand, BadToolsFiles) {
  const struct {
    const char* name;
    const char* text;
    const char* expected;
  } cases[] = {
      {"not_json.json", "[{", "invalid JSON"},
      {"object.json", "{\"type\": \"function\"}", "tools: expected an array"},
      {"no_type.json", "[{\"function\": {\"name\": \"f\"}}]", "tools[0].type"},
      {"no_name.json", "[{\"type\": \"function\", \"function\": {\"description\": \"d\"}}]", "tools[0].function.name"},
      {"bad_parameters.json", "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": 3}}]",
       "tools[0].function.parameters"},
  };
  for (const auto& test_case : cases) {
    const fs::path path = write_scratch(test_case.name, test_case.text);
    const CommandResult result = run_chat("--tools " + path.string(), "hello\n");
    EXPECT_EQ(result.exit_code, 1) << test_case.name << ": " << result.err;
    EXPECT_NE(result.err.find(path.string()), std::string::npos) << test_case.name << ": " << result.err;
    EXPECT_NE(result.err.find(test_case.expected), std::string::npos) << test_case.name << ": " << result.err;
  }

  const fs::path missing = scratch_dir() / "missing_tools.json";
  const CommandResult result = run_chat("--tools " + missing.string(), "hello\n");
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find(missing.string()), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("not found"), std::string::npos) << result.err;
}

TEST(ChatCommand, ToolsReachTemplate) {
  const fs::path tools = write_scratch(
      "tools.json",
      R"([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",)"
      R"( "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
  const CommandResult result = run_chat("--verbose --tools " + tools.string(), "weather in Paris?\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const std::vector<std::string> prompts = logged_prompts(result.err);
  ASSERT_EQ(prompts.size(), 1u) << result.err;
  EXPECT_NE(prompts[0].find("get_weather"), std::string::npos) << prompts[0];
}

TEST(ChatCommand, TurnOverContextKeepsHistory) {
  const CommandResult result =
      run_chat("--verbose --ctx-size 80", "hi\n" + std::string(300, 'x') + " long message\nagain\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("no longer fits the context of 80 tokens"), std::string::npos) << result.err;
  EXPECT_EQ(count_of(result.err, "time to first token"), 2u) << result.err;

  // The prompt of every turn is logged before the context check, the rejected one included.
  const std::vector<std::string> prompts = logged_prompts(result.err);
  ASSERT_EQ(prompts.size(), 3u) << result.err;
  EXPECT_NE(prompts[2].find("hi"), std::string::npos) << prompts[2];
  EXPECT_NE(prompts[2].find("again"), std::string::npos) << prompts[2];
  EXPECT_EQ(prompts[2].find("long message"), std::string::npos) << prompts[2];
}

}  // namespace
