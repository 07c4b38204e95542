// Differential tests of the Jinja engine against goldens rendered by Python jinja2 with Hugging
// Face's apply_chat_template settings (scripts/oracle/chat_template_goldens.py).
#include "text/chat_template.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace mxgemma {
namespace {

const std::string kDataDir = std::string(MXGEMMA_TEST_DATA_DIR) + "/chat_templates";

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open test data file " + path);
  std::stringstream buffer;
  buffer << file.rdbuf();
  return buffer.str();
}

nlohmann::ordered_json load_cases(const std::string& name) {
  return nlohmann::ordered_json::parse(read_file(kDataDir + "/" + name))["cases"];
}

// Renders one golden case and checks the output, or the failure when jinja2 failed too.
void check_case(const ChatTemplate& chat_template, const nlohmann::ordered_json& golden) {
  const std::string name = golden["name"].get<std::string>();
  SCOPED_TRACE(name);
  if (golden.contains("expected")) {
    std::string rendered;
    ASSERT_NO_THROW(rendered = chat_template.render(golden["context"])) << name;
    EXPECT_EQ(rendered, golden["expected"].get<std::string>()) << name;
    return;
  }
  const std::string python_error = golden["error"].get<std::string>();
  try {
    chat_template.render(golden["context"]);
    ADD_FAILURE() << name << ": rendered, but jinja2 failed with " << python_error;
  } catch (const std::runtime_error& error) {
    // raise_exception messages and the sandbox's refusals must come through unchanged.
    for (const std::string prefix : {"TemplateError: ", "SecurityError: "}) {
      if (python_error.rfind(prefix, 0) == 0) {
        EXPECT_NE(std::string(error.what()).find(python_error.substr(prefix.size())),
                  std::string::npos)
            << name << ": " << error.what();
      }
    }
  }
}

TEST(ChatTemplateGoldens, FeatureCases) {
  const auto cases = load_cases("feature_goldens.json");
  ASSERT_GT(cases.size(), 50u);
  for (const auto& golden : cases) {
    const std::string name = golden["name"].get<std::string>();
    const std::string source = golden["template"].get<std::string>();
    const bool syntax_error = golden.contains("error") &&
                              (golden["error"].get<std::string>().rfind("TemplateSyntax", 0) == 0 ||
                               golden["error"].get<std::string>().rfind("TemplateAssertion", 0) == 0);
    if (syntax_error) {
      EXPECT_THROW(ChatTemplate{source}, std::runtime_error) << name;
      continue;
    }
    std::unique_ptr<ChatTemplate> chat_template;
    ASSERT_NO_THROW(chat_template = std::make_unique<ChatTemplate>(source)) << name;
    check_case(*chat_template, golden);
  }
}

class RealTemplateTest : public testing::TestWithParam<std::string> {};

// The instant the golden script gives strftime_now(): 2026-02-03 04:05:06 UTC.
constexpr const char* kGoldenEpoch = "1770091506";

// Sets SOURCE_DATE_EPOCH for one scope and restores the previous value after it.
class ScopedSourceDateEpoch {
 public:
  explicit ScopedSourceDateEpoch(const char* value) {
    const char* previous = std::getenv("SOURCE_DATE_EPOCH");
    if (previous != nullptr) previous_ = previous;
    setenv("SOURCE_DATE_EPOCH", value, 1);
  }
  ~ScopedSourceDateEpoch() {
    if (previous_) {
      setenv("SOURCE_DATE_EPOCH", previous_->c_str(), 1);
    } else {
      unsetenv("SOURCE_DATE_EPOCH");
    }
  }

 private:
  std::optional<std::string> previous_;
};

TEST_P(RealTemplateTest, MatchesJinja2) {
  ScopedSourceDateEpoch fixed_now(kGoldenEpoch);
  const auto cases = load_cases("goldens/" + GetParam() + ".json");
  ASSERT_GE(cases.size(), 60u);
  ChatTemplate chat_template(read_file(kDataDir + "/templates/" + GetParam() + ".jinja"));
  for (const auto& golden : cases) check_case(chat_template, golden);
}

// Real chat templates under templates/, each with goldens/<name>.json.
const std::vector<std::string> kRealTemplates = {
    "gemma4_mlx_vlm", "gemma4_mlx_vlm_osaurus", "gemma4_26b_gguf", "gemma4_26b_gguf_osaurus",
    "qwen3_vl_style", "ministral3_14b_gguf", "deepseek_r1_distill_qwen", "phi4_mini_llama_cpp",
    "llama3_instruct", "llama3_1_instruct", "llama3_2_instruct", "llama3_3_instruct",
    "qwen2_5_instruct", "qwen3", "qwq_32b", "mistral_nemo", "mistral_small_3_2", "devstral_small",
    "phi3_5_mini", "deepseek_v3_1", "deepseek_r1_distill_llama", "deepseek_r1_llama_cpp",
    "gpt_oss", "granite3_3", "command_r_plus_tool_use", "command_r7b_tool_use",
    "hermes2_pro_tool_use", "hermes3_tool_use", "functionary_v3_1", "functionary_v3_2", "gemma2",
    "kimi_k2", "nemotron_nano_v2", "seed_oss", "chatml_openhermes", "mistral_v0_2_no_system",
    "mistral_v1_system", "mistral_large_2407_v3", "mistral_large_2411_v7", "llama2_vigogne",
    "gemma_7b_it", "openchat_3_5", "deepseek_coder", "deepseek_v2", "vicuna", "command_r_plus",
    "phi3_mini", "phi3_small", "phi3_vision", "phi4", "granite3_0", "yandexgpt5_lite", "smollm3",
    "granite4_0", "glm4_6", "qwen3_coder", "apertus", "nemotron3_nano", "minimax_m2", "qwen3_5",
    "lfm2", "gemma3"};

INSTANTIATE_TEST_SUITE_P(ChatTemplateGoldens, RealTemplateTest,
                         testing::ValuesIn(kRealTemplates));

// A golden file the list above misses would never be checked.
TEST(ChatTemplateGoldens, EveryGoldenFileListed) {
  std::set<std::string> listed(kRealTemplates.begin(), kRealTemplates.end());
  EXPECT_EQ(listed.size(), kRealTemplates.size()) << "a template is listed twice";
  for (const auto& entry : std::filesystem::directory_iterator(kDataDir + "/goldens")) {
    const std::string name = entry.path().stem().string();
    EXPECT_EQ(listed.count(name), 1u) << "goldens/" << name << ".json is not in kRealTemplates";
  }
}

// strftime_now() reads SOURCE_DATE_EPOCH when it is set, so dated templates render reproducibly.
TEST(ChatTemplateApi, StrftimeNowReadsSourceDateEpoch) {
  ChatTemplate chat_template("{{ strftime_now('%Y-%m-%d %H:%M:%S') }}");
  {
    ScopedSourceDateEpoch fixed_now(kGoldenEpoch);
    EXPECT_EQ(chat_template.render(nlohmann::ordered_json::object()), "2026-02-03 04:05:06");
  }
  {
    ScopedSourceDateEpoch bad_epoch("yesterday");
    try {
      chat_template.render(nlohmann::ordered_json::object());
      FAIL() << "expected an error for an invalid SOURCE_DATE_EPOCH";
    } catch (const std::runtime_error& error) {
      EXPECT_NE(std::string(error.what()).find("SOURCE_DATE_EPOCH"), std::string::npos)
          << error.what();
    }
  }
}

// The Osaurus patches must change the newer revision's generation prompt and add the
// tool_choice stanza. This catches a golden script whose anchors silently stop matching.
TEST(ChatTemplateGoldens, OsaurusPatchesApplied) {
  const std::string patched = read_file(kDataDir + "/templates/gemma4_26b_gguf_osaurus.jinja");
  const std::string original = read_file(kDataDir + "/templates/gemma4_26b_gguf.jinja");
  EXPECT_NE(patched.find("Tool use is REQUIRED for this turn"), std::string::npos);
  EXPECT_EQ(patched.find("<|channel>thought\\n<channel|>"), std::string::npos);
  EXPECT_NE(original.find("<|channel>thought\\n<channel|>"), std::string::npos);

  ChatTemplate chat_template(patched);
  nlohmann::ordered_json context = {
      {"bos_token", "<bos>"},
      {"add_generation_prompt", true},
      {"tool_choice", "required"},
      {"tools", {{{"type", "function"},
                  {"function", {{"name", "f"}, {"description", "d"}}}}}},
      {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  const std::string rendered = chat_template.render(context);
  // The stanza's escapes decode to a newline and U+2014 EM DASH.
  EXPECT_NE(rendered.find("<tool|>\nTool use is REQUIRED"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("verbatim \u2014 character"), std::string::npos) << rendered;
  EXPECT_EQ(rendered.substr(rendered.size() - 13), "<|turn>model\n") << rendered;
}

TEST(ChatTemplateErrors, SyntaxErrorNamesLineAndColumn) {
  // Columns count characters from 1, so the two-byte 'é' on line 3 counts once.
  const std::pair<const char*, const char*> cases[] = {
      {"line one\nline two {% if x %}\n{{ 1 + }}\n", "line 3, column 8"},
      {"a\nb\n\u00e9{{ x ! y }}", "line 3, column 7"},
      {"{{ 'open }}", "line 1, column 4"},
      {"ok\n  {% for x in %}{% endfor %}", "line 2, column 15"},
      {"{% if x %}\nno end", "line 2, column 7"},
  };
  for (const auto& [source, location] : cases) {
    try {
      ChatTemplate bad(source);
      ADD_FAILURE() << "expected a syntax error: " << source;
    } catch (const std::runtime_error& error) {
      EXPECT_NE(std::string(error.what()).find(location), std::string::npos) << source << ": " << error.what();
    }
  }
}

TEST(ChatTemplateErrors, MalformedTemplatesThrow) {
  const char* const sources[] = {
      "{% if %}",          "{{ x",         "{% for x in %}{% endfor %}", "{% endif %}",
      "{# never closed",   "{{ 'open }}",  "{% set %}",                  "{{ a[1:2:3:4] }}",
      "{% macro m( %}",    "{{ (1, 2 }}",  "{% break %}",                "{{ x | nosuch }}",
      "{{ x is nosuch }}", "{% unknown %}", "{{ '\\x4' }}",              "{% raw %}abc",
  };
  for (const char* source : sources) {
    EXPECT_THROW(ChatTemplate{source}, std::runtime_error) << source;
  }
}

TEST(ChatTemplateErrors, RuntimeErrorsThrow) {
  const nlohmann::ordered_json context = {{"d", nlohmann::ordered_json::object()}, {"n", 1}};
  const char* const sources[] = {
      "{{ missing.attr }}", "{{ d.a.b }}",         "{{ 1 + 'a' }}",       "{{ n() }}",
      "{{ 1 / 0 }}",        "{{ 1 // 0 }}",        "{% for x in n %}{% endfor %}",
      "{{ [1] < 'a' }}",    "{{ raise_exception('stop here') }}", "{{ none | dictsort }}",
      "{{ 10 ** 20 }}",     "{{ 9223372036854775807 + 1 }}",
      "{% set a, b = [1] %}", "{{ missing + 1 }}", "{{ d | tojson(indent=x.y) }}",
  };
  for (const char* source : sources) {
    ChatTemplate chat_template(source);
    EXPECT_THROW(chat_template.render(context), std::runtime_error) << source;
  }
}

TEST(ChatTemplateErrors, RaiseExceptionMessage) {
  ChatTemplate chat_template("{{ raise_exception('Only user and assistant roles') }}");
  try {
    chat_template.render(nlohmann::ordered_json::object());
    FAIL() << "expected raise_exception to throw";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("Only user and assistant roles"), std::string::npos);
  }
}

TEST(ChatTemplateErrors, NonObjectContextRejected) {
  ChatTemplate chat_template("x");
  EXPECT_THROW(chat_template.render(nlohmann::ordered_json::array()), std::invalid_argument);
}

TEST(ChatTemplateLimits, InfiniteRecursionStops) {
  ChatTemplate chat_template("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_THROW(chat_template.render(nlohmann::ordered_json::object()), std::runtime_error);
}

// Each macro level here adds loop and branch frames, the worst case for native stack use.
TEST(ChatTemplateLimits, DeepRecursionThroughBlocksStops) {
  ChatTemplate chat_template(
      "{% macro f(n) %}{% for i in [1] %}{% if true %}{% for j in [1] %}{% if true %}"
      "{{ f(n + 1) | trim }}{% endif %}{% endfor %}{% endif %}{% endfor %}{% endmacro %}{{ f(0) }}");
  EXPECT_THROW(chat_template.render(nlohmann::ordered_json::object()), std::runtime_error);
}

TEST(ChatTemplateLimits, HugeRangeRejected) {
  ChatTemplate chat_template("{{ range(100000000) | length }}");
  EXPECT_THROW(chat_template.render(nlohmann::ordered_json::object()), std::runtime_error);
}

TEST(ChatTemplateLimits, HugeOutputStops) {
  ChatTemplate chat_template(
      "{% for i in range(100000) %}{{ '0123456789' * 10000 }}{% endfor %}");
  EXPECT_THROW(chat_template.render(nlohmann::ordered_json::object()), std::runtime_error);
}

TEST(ChatTemplateLimits, DeepNestingRejected) {
  const std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_THROW(ChatTemplate{deep}, std::runtime_error);
  std::string nested_ifs;
  for (int i = 0; i < 3000; ++i) nested_ifs += "{% if true %}";
  EXPECT_THROW(ChatTemplate{nested_ifs}, std::runtime_error);
}

TEST(ChatTemplateApi, UnorderedJsonContext) {
  ChatTemplate chat_template("{{ messages[0].content }}|{{ flag }}");
  const nlohmann::json context = {{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                  {"flag", true}};
  EXPECT_EQ(chat_template.render(context), "hi|True");
}

TEST(ChatTemplateApi, MovedTemplateStillRenders) {
  ChatTemplate first("{{ 1 + 1 }}");
  ChatTemplate second = std::move(first);
  EXPECT_EQ(second.render(nlohmann::ordered_json::object()), "2");
}

// The Gemma 4 template over a 10-message conversation with tools, rendered repeatedly.
TEST(ChatTemplateRepeat, Gemma4TenMessagesStable) {
  ChatTemplate chat_template(read_file(kDataDir + "/templates/gemma4_26b_gguf.jinja"));
  nlohmann::ordered_json context = {{"bos_token", "<bos>"}, {"add_generation_prompt", true}};
  for (const auto& golden : load_cases("goldens/gemma4_26b_gguf.json")) {
    if (golden["context"].contains("tools")) {
      context["tools"] = golden["context"]["tools"];
      break;
    }
  }
  ASSERT_TRUE(context.contains("tools"));
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  messages.push_back({{"role", "system"}, {"content", "You are a helpful assistant."}});
  for (int i = 0; i < 9; ++i) {
    const bool user = i % 2 == 0;
    messages.push_back({{"role", user ? "user" : "assistant"},
                        {"content", "Message number " + std::to_string(i) +
                                        " with some ordinary text to render."}});
  }
  context["messages"] = messages;
  // Renders must not keep state between calls (speed is left to benchmarks, not tests).
  const std::string first = chat_template.render(context);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(chat_template.render(context), first) << "render " << i;
  EXPECT_NE(first.find("Message number 8"), std::string::npos);
}

}  // namespace
}  // namespace mxgemma
