// mxgemma template and chat template selection: prompts compared byte for byte with
// transformers' apply_chat_template, template choice, tool-message folding and bad input.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/cli/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using mxgemma::test::CommandResult;
using mxgemma::test::run_cli;
using mxgemma::test::scratch_dir;
using mxgemma::test::tiny_bundle;
using mxgemma::test::write_scratch;

const fs::path kData = MXGEMMA_TEST_DATA_DIR;



std::string template_command(const std::string& request_path) {
  return "template -m " + tiny_bundle() + " --request " + request_path;
}

// Counts the lines of `text`, so a test can check that an error is a single line.
size_t line_count(const std::string& text) {
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  return lines;
}

// A copy of the tiny bundle (files linked) without chat_template.jinja, whose tokenizer_config.json
// has `chat_template` as its "chat_template".
fs::path bundle_with_chat_template(const std::string& folder, const nlohmann::ordered_json& chat_template) {
  const fs::path dir = scratch_dir() / folder;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& entry : fs::directory_iterator(tiny_bundle())) {
    const std::string name = entry.path().filename().string();
    if (name == "chat_template.jinja" || name == "tokenizer_config.json") continue;
    fs::create_symlink(entry.path(), dir / name);
  }
  std::ifstream stream(fs::path(tiny_bundle()) / "tokenizer_config.json");
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(stream);
  config["chat_template"] = chat_template;
  std::ofstream(dir / "tokenizer_config.json") << config.dump(2);
  return dir;
}

// A bundle whose tokenizer_config.json lists the templates "default" and "tool_use".
fs::path bundle_with_named_templates() {
  return bundle_with_chat_template(
      "named_bundle",
      nlohmann::ordered_json::array({
          {{"name", "default"}, {"template", "DEFAULT {{ bos_token }}{{ messages[0]['content'] }}"}},
          {{"name", "tool_use"}, {"template", "TOOL_USE {{ eos_token }}{{ messages | length }}"}},
      }));
}

TEST(TemplateCommand, MatchesTransformersGoldens) {
  std::ifstream stream(kData / "template_command" / "goldens.json");
  ASSERT_TRUE(stream) << "missing tests/data/template_command/goldens.json";
  const nlohmann::json goldens = nlohmann::json::parse(stream);
  ASSERT_GE(goldens.at("cases").size(), 8u);
  for (const auto& golden : goldens.at("cases")) {
    const std::string name = golden.at("name").get<std::string>();
    SCOPED_TRACE(name);
    std::string arguments = template_command((kData / "template_command" / "requests" / (name + ".json")).string());
    if (!golden.at("template").is_null()) {
      arguments += " --template " + (kData / "chat_templates" / "templates" / golden.at("template").get<std::string>()).string();
    }
    const CommandResult result = run_cli(arguments);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, golden.at("expected").get<std::string>());
  }
}

TEST(TemplateCommand, PrintsNoTrailingNewline) {
  const fs::path request = write_scratch("plain.json", R"({"messages": [{"role": "user", "content": "x"}]})");
  const fs::path chat_template = write_scratch("plain.jinja", "{{ messages[0]['content'] }}");
  const CommandResult result = run_cli(template_command(request.string()) + " --template " + chat_template.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "x");
}

TEST(TemplateCommand, PassesExtraKeysAndSpecialTokens) {
  const fs::path request = write_scratch(
      "extra.json", R"({"messages": [{"role": "user", "content": "x"}], "custom": {"b": 1, "a": [true, null]}})");
  const fs::path chat_template = write_scratch(
      "extra.jinja",
      "{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ unk_token }}|{{ mask_token }}|{{ custom | tojson }}|"
      "{{ tools is none }}|{{ add_generation_prompt }}");
  const CommandResult result = run_cli(template_command(request.string()) + " --template " + chat_template.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, R"(<bos>|<eos>|<pad>|<unk>|<mask>|{"b": 1, "a": [true, null]}|True|False)");
}

TEST(TemplateCommand, SelectsNamedTemplates) {
  const fs::path bundle = bundle_with_named_templates();
  const fs::path request = write_scratch("named.json", R"({"messages": [{"role": "user", "content": "hi"}]})");
  const std::string base = "template -m " + bundle.string() + " --request " + request.string();

  const CommandResult by_default = run_cli(base);
  ASSERT_EQ(by_default.exit_code, 0) << by_default.err;
  EXPECT_EQ(by_default.out, "DEFAULT <bos>hi");

  const CommandResult by_name = run_cli(base + " --chat-template-name tool_use");
  ASSERT_EQ(by_name.exit_code, 0) << by_name.err;
  EXPECT_EQ(by_name.out, "TOOL_USE <eos>1");

  const CommandResult unknown = run_cli(base + " --chat-template-name rag");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("tokenizer_config.json"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("\"rag\""), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("default, tool_use"), std::string::npos) << unknown.err;
}

TEST(TemplateCommand, ListWithoutDefaultNeedsName) {
  const fs::path bundle = bundle_with_chat_template(
      "no_default_bundle", nlohmann::ordered_json::array({{{"name", "rag"}, {"template", "RAG"}}}));
  const fs::path request = write_scratch("no_default.json", R"({"messages": [{"role": "user", "content": "hi"}]})");
  const std::string base = "template -m " + bundle.string() + " --request " + request.string();

  const CommandResult unnamed = run_cli(base);
  EXPECT_EQ(unnamed.exit_code, 1);
  EXPECT_NE(unnamed.err.find("no entry named \"default\""), std::string::npos) << unnamed.err;
  EXPECT_NE(unnamed.err.find("rag"), std::string::npos) << unnamed.err;

  const CommandResult named = run_cli(base + " --chat-template-name rag");
  ASSERT_EQ(named.exit_code, 0) << named.err;
  EXPECT_EQ(named.out, "RAG");
}

TEST(TemplateCommand, MalformedTemplateListIsRejected) {
  const struct {
    nlohmann::ordered_json chat_template;
    const char* message;
  } cases[] = {
      {nlohmann::ordered_json::array({"text"}), "chat_template: entry 0: expected an object, found string"},
      {nlohmann::ordered_json::array({{{"template", "x"}}}), "chat_template: entry 0: \"name\" is missing"},
      {nlohmann::ordered_json::array({{{"name", "default"}, {"template", 3}}}),
       "chat_template: entry 0: \"template\" is missing or not a string"},
      {nlohmann::ordered_json(7), "chat_template: expected a string or a list"},
  };
  const fs::path request = write_scratch("malformed.json", R"({"messages": [{"role": "user", "content": "hi"}]})");
  for (const auto& test_case : cases) {
    SCOPED_TRACE(test_case.message);
    const fs::path bundle = bundle_with_chat_template("malformed_bundle", test_case.chat_template);
    const CommandResult result = run_cli("template -m " + bundle.string() + " --request " + request.string());
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.err.find("tokenizer_config.json"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(test_case.message), std::string::npos) << result.err;
  }
}

TEST(TemplateCommand, UnknownNameOnSingleTemplateBundle) {
  const fs::path request = write_scratch("single.json", R"({"messages": [{"role": "user", "content": "hi"}]})");
  const CommandResult result = run_cli(template_command(request.string()) + " --chat-template-name tool_use");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("no chat template named \"tool_use\""), std::string::npos) << result.err;
}

TEST(TemplateCommand, BadRequestsAreOneLineErrors) {
  struct Case {
    const char* name;
    const char* text;     // nullptr: the file does not exist
    const char* message;  // expected inside the error
  };
  const Case cases[] = {
      {"missing.json", nullptr, "cannot open the request file"},
      {"not_json.json", "{\"messages\": [", "invalid JSON"},
      {"array.json", "[]", "expected a JSON object, found array"},
      {"no_messages.json", "{\"tools\": []}", "messages: missing"},
      {"messages_string.json", "{\"messages\": \"hi\"}", "messages: expected an array, found string"},
      {"empty_messages.json", "{\"messages\": []}", "messages: the conversation is empty"},
      {"message_number.json", "{\"messages\": [3]}", "messages[0]: expected an object, found number"},
      {"no_role.json", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"content\": \"b\"}]}",
       "messages[1]: \"role\" is missing"},
      {"role_number.json", "{\"messages\": [{\"role\": 1}]}", "messages[0].role: expected a string, found number"},
      {"content_number.json", "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}",
       "messages[0].content: expected a string or an array of content parts, found number"},
      {"content_object.json", "{\"messages\": [{\"role\": \"user\", \"content\": {}}]}",
       "messages[0].content: expected a string or an array of content parts, found object"},
      {"tools_object.json", "{\"messages\": [{\"role\": \"user\"}], \"tools\": {}}", "tools: expected an array"},
      {"generation_string.json", "{\"messages\": [{\"role\": \"user\"}], \"add_generation_prompt\": \"yes\"}",
       "add_generation_prompt: expected a boolean"},
      {"continue.json", "{\"messages\": [{\"role\": \"user\"}], \"continue_final_message\": true}",
       "continue_final_message: not supported"},
  };
  for (const Case& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    const fs::path path = scratch_dir() / test_case.name;
    fs::remove(path);
    if (test_case.text != nullptr) write_scratch(test_case.name, test_case.text);
    const CommandResult result = run_cli(template_command(path.string()));
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_TRUE(result.out.empty()) << result.out;
    EXPECT_EQ(line_count(result.err), 1u) << result.err;
    EXPECT_NE(result.err.find(path.string()), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(test_case.message), std::string::npos) << result.err;
  }
}

TEST(TemplateCommand, SyntaxErrorNamesFileLineAndColumn) {
  const fs::path request = write_scratch("syntax.json", R"({"messages": [{"role": "user", "content": "x"}]})");
  const fs::path chat_template = write_scratch("syntax.jinja", "line one\n{% if messages %}\n{{ messages[0] }\n{% endif %}");
  const CommandResult result = run_cli(template_command(request.string()) + " --template " + chat_template.string());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(line_count(result.err), 1u) << result.err;
  EXPECT_NE(result.err.find(chat_template.string()), std::string::npos) << result.err;
  // "{{ messages[0] }" ends at the lone '}' in column 16.
  EXPECT_NE(result.err.find("line 3, column 16"), std::string::npos) << result.err;
}

TEST(TemplateCommand, DeeplyNestedRequestIsAnError) {
  const std::string nested = std::string(20000, '[') + std::string(20000, ']');
  const fs::path request = write_scratch(
      "deep.json", R"({"messages": [{"role": "user", "content": "x"}], "deep": )" + nested + "}");
  const CommandResult result = run_cli(template_command(request.string()));
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("levels deep"), std::string::npos) << result.err;
}

TEST(TemplateCommand, RaiseExceptionSurfacesMessage) {
  const fs::path request = write_scratch("raise.json", R"({"messages": [{"role": "tool", "content": "x"}]})");
  const fs::path chat_template = write_scratch(
      "raise.jinja", "{% if messages[0]['role'] == 'tool' %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}");
  const CommandResult result = run_cli(template_command(request.string()) + " --template " + chat_template.string());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(line_count(result.err), 1u) << result.err;
  EXPECT_NE(result.err.find("Conversation roles must alternate"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(chat_template.string()), std::string::npos) << result.err;
}

TEST(TemplateCommand, MissingTemplateFileIsReported) {
  const fs::path request = write_scratch("nofile.json", R"({"messages": [{"role": "user", "content": "x"}]})");
  const CommandResult result = run_cli(template_command(request.string()) + " --template /nonexistent/t.jinja");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("/nonexistent/t.jinja"), std::string::npos) << result.err;
}

// A template that renders tool messages as turns of their own (as most do) keeps them as they are.
TEST(TemplateCommand, ToolMessagesKeptForOtherTemplates) {
  const fs::path request = write_scratch(
      "tool_other.json",
      R"({"messages": [{"role": "user", "content": "q"},
          {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {}}}]},
          {"role": "tool", "tool_call_id": "c1", "content": "r"}]})");
  const fs::path chat_template = write_scratch(
      "tool_other.jinja",
      "{% for m in messages %}[{{ m.role }}{% if m.tool_responses %} folded{% endif %}:{{ m.content }}]{% endfor %}");
  const CommandResult result = run_cli(template_command(request.string()) + " --template " + chat_template.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "[user:q][assistant:][tool:r]");
}

TEST(RunCommand, UsesChatTemplateFile) {
  const fs::path chat_template = write_scratch("run.jinja", "{{ bos_token }}RUN TEMPLATE {{ messages[-1]['content'] }}");
  const CommandResult result = run_cli("run -m " + tiny_bundle() + " -p hello --max-tokens 1 --temperature 0 --verbose " +
                                       "--chat-template " + chat_template.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("<bos>RUN TEMPLATE hello"), std::string::npos) << result.err;
}

TEST(RunCommand, SelectsNamedTemplate) {
  const fs::path bundle = bundle_with_named_templates();
  const CommandResult result = run_cli("run -m " + bundle.string() +
                                       " -p hello --max-tokens 1 --temperature 0 --verbose --chat-template-name tool_use");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("TOOL_USE <eos>1"), std::string::npos) << result.err;
}

TEST(RunCommand, MissingChatTemplateFileIsReported) {
  const CommandResult result = run_cli("run -m " + tiny_bundle() + " -p hello --chat-template /nonexistent/t.jinja");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("/nonexistent/t.jinja"), std::string::npos) << result.err;
}

}  // namespace
