#include "engine/tool_call_grammar.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/sampler.h"
#include "text/gemma4_output.h"

namespace mxgemma {
namespace {

// Parses the text between the markers the way the output parser does.
bool parses(const std::string& text, Gemma4ToolCall& call) {
  const std::string open = "<|tool_call>";
  const std::string close = "<tool_call|>";
  if (text.rfind(open, 0) != 0 || text.size() < open.size() + close.size()) return false;
  if (text.compare(text.size() - close.size(), close.size(), close) != 0) return false;
  std::string error;
  return parse_gemma4_tool_call(text.substr(open.size(), text.size() - open.size() - close.size()), call, error);
}

TEST(ToolCallGrammar, AcceptsWellFormedCall) {
  ToolCallGrammar grammar({"get_weather", "get_time"});
  const std::vector<std::string> pieces = {"<|tool_call>", "call:", "get_", "weather", "{", "city:", "<|\"|>", "Paris, FR",
                                           "<|\"|>", ",days:", "3", ",tags:[", "1,", "{a:true}", "]}", "<tool_call|>"};
  std::string text;
  for (const std::string& piece : pieces) {
    ASSERT_TRUE(grammar.accepts(piece)) << "rejected " << piece << " after " << text;
    grammar.advance(piece);
    text += piece;
  }
  EXPECT_TRUE(grammar.closed());
  Gemma4ToolCall call;
  ASSERT_TRUE(parses(text, call));
  EXPECT_EQ(call.name, "get_weather");
  EXPECT_EQ(call.arguments, R"({"city":"Paris, FR","days":3,"tags":[1,{"a":true}]})");
}

TEST(ToolCallGrammar, RejectsUnknownNameAndMarkers) {
  ToolCallGrammar grammar({"lookup"});
  grammar.advance("<|tool_call>call:");
  EXPECT_FALSE(grammar.accepts("search{"));
  EXPECT_FALSE(grammar.accepts("look{"));
  EXPECT_TRUE(grammar.accepts("look"));
  grammar.advance("lookup{q:");
  EXPECT_FALSE(grammar.accepts("<turn|>"));
  EXPECT_FALSE(grammar.accepts("}"));
  EXPECT_FALSE(grammar.accepts("]"));
  EXPECT_TRUE(grammar.accepts("<|\"|>x"));
  grammar.advance("1");
  EXPECT_FALSE(grammar.accepts(",", /*allow_comma=*/false));
  EXPECT_TRUE(grammar.accepts(","));
  EXPECT_FALSE(grammar.accepts("<tool_call|>"));
  grammar.advance("}");
  EXPECT_FALSE(grammar.accepts("x"));
  EXPECT_TRUE(grammar.accepts("<tool_call|>"));
}

TEST(ToolCallGrammar, ClosingTextParsesFromEveryPrefix) {
  const std::string full = "<|tool_call>call:set_alarm{time:<|\"|>7:30<|\"|>,repeat:[1,2],opts:{loud:true},<|\"|>k<|\"|>:x}<tool_call|>";
  for (size_t cut = 0; cut < full.size(); ++cut) {
    ToolCallGrammar grammar({"set_alarm", "stop"});
    const std::string prefix = full.substr(0, cut);
    // A cut inside a <|"|> marker is skipped: the grammar takes the marker whole or not at all.
    if (!grammar.accepts(prefix)) continue;
    grammar.advance(prefix);
    const std::string text = prefix + grammar.closing_text();
    Gemma4ToolCall call;
    EXPECT_TRUE(parses(text, call)) << text;
    EXPECT_EQ(call.name, "set_alarm") << text;
  }
}

TEST(SamplerAllowed, PicksOnlyAllowedTokens) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.seed = 7;
  Sampler sampler(params);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> logits = {5.0f, 4.0f, 0.0f, -1.0f, 3.0f};
    const int32_t token = sampler.sample_allowed(logits, {}, [](int32_t id) { return id == 2 || id == 3; });
    EXPECT_TRUE(token == 2 || token == 3) << token;
  }
}

TEST(SamplerAllowed, GreedyTakesBestAllowed) {
  SamplingParams params;
  params.temperature = 0.0f;
  Sampler sampler(params);
  std::vector<float> logits = {5.0f, 4.0f, 0.0f, 2.0f, 3.0f};
  EXPECT_EQ(sampler.sample_allowed(logits, {}, [](int32_t id) { return id != 0 && id != 4; }), 1);
}

TEST(SamplerAllowed, NoAllowedTokenReturnsMinusOne) {
  SamplingParams params;
  params.seed = 1;
  Sampler sampler(params);
  std::vector<float> logits(100, 0.0f);
  EXPECT_EQ(sampler.sample_allowed(logits, {}, [](int32_t) { return false; }), -1);
}

}  // namespace
}  // namespace mxgemma
