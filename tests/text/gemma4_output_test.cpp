// Gemma 4 output parser tests. Every table case is fed whole, in every 1-, 2- and 3-byte chunking
// (each phase), and at every single split point, and must give the same events each time.
#include "text/gemma4_output.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "text/utf8.h"

namespace mxgemma {

// Readable failure output for event lists.
void PrintTo(const Gemma4Event& event, std::ostream* out) {
  switch (event.kind) {
    case Gemma4Event::Kind::kReasoning:
      *out << "Reasoning(\"" << event.text << "\")";
      break;
    case Gemma4Event::Kind::kContent:
      *out << "Content(\"" << event.text << "\")";
      break;
    case Gemma4Event::Kind::kToolCall:
      *out << "ToolCall(" << event.tool_call.name << ", " << event.tool_call.arguments << ")";
      break;
  }
}

namespace {

using Events = std::vector<Gemma4Event>;
using Kind = Gemma4Event::Kind;

Gemma4Event reasoning(std::string text) { return {Kind::kReasoning, std::move(text), {}}; }
Gemma4Event content(std::string text) { return {Kind::kContent, std::move(text), {}}; }
Gemma4Event tool_call(std::string name, std::string arguments) {
  return {Kind::kToolCall, "", {std::move(name), std::move(arguments)}};
}

struct OutputCase {
  std::string name;
  std::string text;
  Events expected;
  Gemma4Stop stop = Gemma4Stop::kNone;
  // Each expected warning is a substring of the warning at the same index.
  std::vector<std::string> warnings = {};
};

struct StreamResult {
  Events events;
  Gemma4Output output;
};

// Joins adjacent text events of one kind, which the parser splits wherever a piece ends.
Events merge_adjacent_text(const Events& events) {
  Events merged;
  for (const Gemma4Event& event : events) {
    if (event.kind != Kind::kToolCall && !merged.empty() && merged.back().kind == event.kind) {
      merged.back().text += event.text;
    } else {
      merged.push_back(event);
    }
  }
  return merged;
}

StreamResult stream_pieces(const std::vector<std::string>& pieces,
                           Gemma4OutputOptions options = {}) {
  Gemma4OutputParser parser(options);
  StreamResult result;
  for (const std::string& piece : pieces) parser.push(piece, result.events);
  result.output = parser.finish(result.events);
  return result;
}

// Pieces of `size` bytes, except a first piece of `first` bytes.
std::vector<std::string> chunk(const std::string& text, size_t first, size_t size) {
  std::vector<std::string> pieces;
  size_t pos = 0;
  size_t next = first;
  while (pos < text.size()) {
    pieces.push_back(text.substr(pos, next));
    pos += next;
    next = size;
  }
  return pieces;
}

std::string describe(const std::vector<std::string>& pieces) {
  std::string described;
  for (const std::string& piece : pieces) described += "[" + piece + "]";
  return described;
}

// All chunkings the table cases are fed in.
std::vector<std::vector<std::string>> chunkings(const std::string& text) {
  std::vector<std::vector<std::string>> all = {{text}};
  for (size_t size = 1; size <= 3; ++size) {
    for (size_t first = 1; first <= size; ++first) all.push_back(chunk(text, first, size));
  }
  for (size_t split = 1; split < text.size(); ++split) {
    all.push_back({text.substr(0, split), text.substr(split)});
  }
  return all;
}

std::string joined_text(const Events& events, Kind kind) {
  std::string joined;
  for (const Gemma4Event& event : events) {
    if (event.kind == kind) joined += event.text;
  }
  return joined;
}

std::vector<Gemma4ToolCall> joined_calls(const Events& events) {
  std::vector<Gemma4ToolCall> calls;
  for (const Gemma4Event& event : events) {
    if (event.kind == Kind::kToolCall) calls.push_back(event.tool_call);
  }
  return calls;
}

void check_case(const OutputCase& test_case) {
  SCOPED_TRACE(test_case.name);
  const Gemma4Output whole = parse_gemma4_output(test_case.text);

  ASSERT_EQ(whole.warnings.size(), test_case.warnings.size());
  for (size_t i = 0; i < test_case.warnings.size(); ++i) {
    EXPECT_NE(whole.warnings[i].find(test_case.warnings[i]), std::string::npos)
        << whole.warnings[i];
  }
  EXPECT_EQ(whole.stop, test_case.stop);

  for (const std::vector<std::string>& pieces : chunkings(test_case.text)) {
    SCOPED_TRACE(describe(pieces));
    const StreamResult streamed = stream_pieces(pieces);

    EXPECT_EQ(merge_adjacent_text(streamed.events), test_case.expected);
    EXPECT_EQ(joined_text(streamed.events, Kind::kReasoning), whole.reasoning);
    EXPECT_EQ(joined_text(streamed.events, Kind::kContent), whole.content);
    EXPECT_EQ(joined_calls(streamed.events), whole.tool_calls);
    EXPECT_EQ(streamed.output.reasoning, whole.reasoning);
    EXPECT_EQ(streamed.output.content, whole.content);
    EXPECT_EQ(streamed.output.warnings, whole.warnings);
    EXPECT_EQ(streamed.output.stop, whole.stop);
  }
}

// The string delimiter of the tool-call syntax.
const std::string Q = "<|\"|>";

std::vector<OutputCase> reasoning_and_content_cases() {
  return {
      {"plain content", "Hello, world.", {content("Hello, world.")}},
      {"content then end of turn",
       "Hi there.<turn|>",
       {content("Hi there.")},
       Gemma4Stop::kEndOfTurn},
      {"thought then answer",
       "<|channel>thought\nLet me think.\n<channel|>The answer is 42.<turn|>",
       {reasoning("Let me think.\n"), content("The answer is 42.")},
       Gemma4Stop::kEndOfTurn},
      {"empty thought channel",
       "<|channel>thought\n<channel|>Answer<turn|>",
       {content("Answer")},
       Gemma4Stop::kEndOfTurn},
      {"empty thought without newline", "<|channel>thought<channel|>Answer", {content("Answer")}},
      {"bare channel markers", "<|channel><channel|>Answer", {content("Answer")}},
      {"other channel name",
       "<|channel>analysis\nchecking<channel|>result",
       {reasoning("checking"), content("result")}},
      {"channel without a name",
       "<|channel>Hmm, ok<channel|>done",
       {reasoning("Hmm, ok"), content("done")}},
      {"reasoning never closed",
       "<|channel>thought\nstill thinking",
       {reasoning("still thinking")}},
      {"reasoning ended by end of turn",
       "<|channel>thought\nabc<turn|>",
       {reasoning("abc")},
       Gemma4Stop::kEndOfTurn},
      {"channel name cut at finish", "<|channel>thoug", {}},
      {"bare thought prefix",
       "thought\nreason<channel|>answer",
       {reasoning("reason"), content("answer")}},
      {"bare thought after whitespace",
       "\n thought\nX<channel|>Y",
       {reasoning("X"), content("Y")}},
      {"bare thought never closed", "thought\nabc", {reasoning("abc")}},
      {"word starting like thought", "thoughtful answer", {content("thoughtful answer")}},
      {"leading whitespace kept", "  Hello", {content("  Hello")}},
      {"channel end without opener", "a<channel|>b", {content("ab")}, Gemma4Stop::kNone,
       {"dropped a stray <channel|>"}},
      {"text after end of turn ignored",
       "Done<turn|>extra",
       {content("Done")},
       Gemma4Stop::kEndOfTurn,
       {"ignored 5 bytes"}},
      {"partial marker at finish", "abc<|tool", {content("abc<|tool")}},
      {"angle brackets in text", "a < b <= c <|x|> <", {content("a < b <= c <|x|> <")}},
      {"stray control tokens are dropped",
       "<|turn>user<|\"|><tool_call|> <tool|>x<|tool><|think|><tool_response|>",
       {content("user x")},
       Gemma4Stop::kNone,
       {"stray <|turn>", "stray <|\"|>", "stray <tool_call|>", "stray <tool|>", "stray <|tool>",
        "stray <|think|>", "stray <tool_response|>"}},
      {"nested channel opener",
       "<|channel>thought\na<|channel>b<channel|>c",
       {reasoning("ab"), content("c")},
       Gemma4Stop::kNone,
       {"inside an open channel"}},
      {"unicode content",
       "<|channel>thought\nπ≈3.14 🤔<channel|>Größe: 世界",
       {reasoning("π≈3.14 🤔"), content("Größe: 世界")}},
      {"empty output", "", {}},
  };
}

std::vector<OutputCase> tool_call_cases() {
  return {
      {"single call",
       "<|tool_call>call:get_weather{city:" + Q + "Paris" + Q + ",days:3}<tool_call|>" +
           "<|tool_response>",
       {tool_call("get_weather", R"({"city":"Paris","days":3})")},
       Gemma4Stop::kToolResponse},
      {"punctuation inside strings",
       "<|tool_call>call:f{q:" + Q + "a{b},c:d \"e\" 'f' [x]\nline2\\n" + Q + "}<tool_call|>",
       {tool_call("f", R"({"q":"a{b},c:d \"e\" 'f' [x]\nline2\\n"})")}},
      {"unicode strings",
       "<|tool_call>call:translate{text:" + Q + "héllo 世界 🌍" + Q + ",lang:" + Q + "日本語" + Q +
           "}<tool_call|>",
       {tool_call("translate", R"({"text":"héllo 世界 🌍","lang":"日本語"})")}},
      {"empty arguments", "<|tool_call>call:f{}<tool_call|>", {tool_call("f", "{}")}},
      {"empty string value",
       "<|tool_call>call:f{s:" + Q + Q + "}<tool_call|>",
       {tool_call("f", R"({"s":""})")}},
      {"nested objects and arrays",
       "<|tool_call>call:plan{steps:[{id:1,tags:[" + Q + "a" + Q + "," + Q + "b" + Q +
           "]},{id:2,tags:[]}],meta:{owner:{name:" + Q + "Ann" + Q + "}},empty:{}}<tool_call|>",
       {tool_call("plan",
                  R"({"steps":[{"id":1,"tags":["a","b"]},{"id":2,"tags":[]}],)"
                  R"("meta":{"owner":{"name":"Ann"}},"empty":{}})")}},
      {"bare values",
       "<|tool_call>call:calc{a:-3,b:2.5,c:-0.25,d:1e3,e:true,f:false,g:null,h:007,i:NaN,"
       "j:Paris,k:1.}<tool_call|>",
       {tool_call("calc",
                  R"({"a":-3,"b":2.5,"c":-0.25,"d":1000.0,"e":true,"f":false,"g":null,)"
                  R"("h":"007","i":"NaN","j":"Paris","k":"1."})")}},
      {"bare value with colons",
       "<|tool_call>call:f{time:12:30,url:http://x.org/a?b=c}<tool_call|>",
       {tool_call("f", R"({"time":"12:30","url":"http://x.org/a?b=c"})")}},
      {"keys in call order",
       "<|tool_call>call:f{zeta:1,alpha:2,mid:3}<tool_call|>",
       {tool_call("f", R"({"zeta":1,"alpha":2,"mid":3})")}},
      {"repeated key keeps first position",
       "<|tool_call>call:f{a:1,b:2,a:3}<tool_call|>",
       {tool_call("f", R"({"a":3,"b":2})")}},
      {"quoted keys",
       "<|tool_call>call:f{" + Q + "my key" + Q + ":1,\"json key\":2}<tool_call|>",
       {tool_call("f", R"({"my key":1,"json key":2})")}},
      {"whitespace around tokens",
       "<|tool_call> call:f{ a : 1 ,\n b : " + Q + " x " + Q + " , c : [ 1 , 2 ] } <tool_call|>",
       {tool_call("f", R"({"a":1,"b":" x ","c":[1,2]})")}},
      {"dotted and dashed name",
       "<|tool_call>call:ns.get-item_v2{}<tool_call|>",
       {tool_call("ns.get-item_v2", "{}")}},
      {"several calls",
       "<|tool_call>call:a{x:1}<tool_call|><|tool_call>call:b{y:" + Q + "z" + Q +
           "}<tool_call|><|tool_response>",
       {tool_call("a", R"({"x":1})"), tool_call("b", R"({"y":"z"})")},
       Gemma4Stop::kToolResponse},
      {"call after reasoning",
       "<|channel>thought\nNeed the weather.<channel|><|tool_call>call:w{c:" + Q + "Oslo" + Q +
           "}<tool_call|><|tool_response>",
       {reasoning("Need the weather."), tool_call("w", R"({"c":"Oslo"})")},
       Gemma4Stop::kToolResponse},
      {"text around a call",
       "Sure.<|tool_call>call:f{}<tool_call|>Done.<turn|>",
       {content("Sure."), tool_call("f", "{}"), content("Done.")},
       Gemma4Stop::kEndOfTurn},
      {"call inside reasoning",
       "<|channel>thought\nA<|tool_call>call:f{}<tool_call|>B<channel|>C",
       {reasoning("A"), tool_call("f", "{}"), reasoning("B"), content("C")}},
      {"string containing markers",
       "<|tool_call>call:f{s:" + Q + "<|channel>x<channel|><turn" + Q + "}<tool_call|>",
       {tool_call("f", R"({"s":"<|channel>x<channel|><turn"})")}},
  };
}

std::vector<OutputCase> malformed_call_cases() {
  return {
      {"unterminated call at finish",
       "Text<|tool_call>call:f{a:1",
       {content("Text<|tool_call>call:f{a:1")},
       Gemma4Stop::kNone,
       {"unterminated tool call kept as content"}},
      {"call cut by end of turn",
       "<|tool_call>call:f{a:1<turn|>after",
       {content("<|tool_call>call:f{a:1")},
       Gemma4Stop::kEndOfTurn,
       {"unterminated tool call", "ignored 5 bytes"}},
      {"call cut by tool response",
       "<|tool_call>call:f{a:<|tool_response>",
       {content("<|tool_call>call:f{a:")},
       Gemma4Stop::kToolResponse,
       {"unterminated tool call"}},
      {"unterminated call in reasoning",
       "<|channel>thought\nx<|tool_call>call:f{",
       {reasoning("x<|tool_call>call:f{")},
       Gemma4Stop::kNone,
       {"unterminated tool call kept as reasoning"}},
      {"garbage after call prefix",
       "<|tool_call>call:!!{}<tool_call|>ok",
       {content("<|tool_call>call:!!{}<tool_call|>ok")},
       Gemma4Stop::kNone,
       {"missing tool name"}},
      {"no call prefix",
       "<|tool_call>hello world<tool_call|>",
       {content("<|tool_call>hello world<tool_call|>")},
       Gemma4Stop::kNone,
       {"expected \"call:NAME{\""}},
      {"name without arguments",
       "<|tool_call>call:f<tool_call|>",
       {content("<|tool_call>call:f<tool_call|>")},
       Gemma4Stop::kNone,
       {"expected '{' after tool name \"f\""}},
      {"missing colon",
       "<|tool_call>call:f{a 1}<tool_call|>",
       {content("<|tool_call>call:f{a 1}<tool_call|>")},
       Gemma4Stop::kNone,
       {"expected ':' after key \"a 1\""}},
      {"missing value",
       "<|tool_call>call:f{a:}<tool_call|>",
       {content("<|tool_call>call:f{a:}<tool_call|>")},
       Gemma4Stop::kNone,
       {"expected a value"}},
      {"trailing comma",
       "<|tool_call>call:f{a:1,}<tool_call|>",
       {content("<|tool_call>call:f{a:1,}<tool_call|>")},
       Gemma4Stop::kNone,
       {"expected a key"}},
      {"text after closing brace",
       "<|tool_call>call:f{a:1} extra<tool_call|>",
       {content("<|tool_call>call:f{a:1} extra<tool_call|>")},
       Gemma4Stop::kNone,
       {"unexpected text after the closing '}'"}},
      {"unterminated string",
       "<|tool_call>call:f{a:" + Q + "abc}<tool_call|>",
       {content("<|tool_call>call:f{a:" + Q + "abc}<tool_call|>")},
       Gemma4Stop::kNone,
       {"unterminated <|\"|> string"}},
      {"unclosed brace",
       "<|tool_call>call:f{a:{b:1}<tool_call|>",
       {content("<|tool_call>call:f{a:{b:1}<tool_call|>")},
       Gemma4Stop::kNone,
       {"expected ',' or '}'"}},
      {"bracket mismatch",
       "<|tool_call>call:f{a:[1,2}}<tool_call|>",
       {content("<|tool_call>call:f{a:[1,2}}<tool_call|>")},
       Gemma4Stop::kNone,
       {"expected ',' or ']'"}},
      {"bad call then good call",
       "<|tool_call>call:{}<tool_call|><|tool_call>call:g{}<tool_call|>",
       {content("<|tool_call>call:{}<tool_call|>"), tool_call("g", "{}")},
       Gemma4Stop::kNone,
       {"missing tool name"}},
  };
}

TEST(Gemma4Output, ReasoningAndContent) {
  for (const OutputCase& test_case : reasoning_and_content_cases()) check_case(test_case);
}

TEST(Gemma4Output, ToolCalls) {
  for (const OutputCase& test_case : tool_call_cases()) check_case(test_case);
}

TEST(Gemma4Output, MalformedCallsBecomeText) {
  for (const OutputCase& test_case : malformed_call_cases()) check_case(test_case);
}

TEST(Gemma4Output, RandomChunkingsMatchWhole) {
  const std::string text = "<|channel>thought\nPlan: call tools.\n<channel|>Checking." +
                           std::string("<|tool_call>call:search{query:") + Q + "a, b: {c}" + Q +
                           ",limit:10,filters:{lang:[" + Q + "en" + Q + "],safe:true}}" +
                           "<tool_call|>Then <|tool_call>call:f{x:-1.5}<tool_call|>done<turn|>";
  const Events expected = {
      reasoning("Plan: call tools.\n"),
      content("Checking."),
      tool_call("search",
                R"({"query":"a, b: {c}","limit":10,"filters":{"lang":["en"],"safe":true}})"),
      content("Then "),
      tool_call("f", R"({"x":-1.5})"),
      content("done"),
  };

  std::mt19937 random(1234);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::string> pieces;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t size = std::uniform_int_distribution<size_t>(0, 12)(random);
      pieces.push_back(text.substr(pos, size));
      pos += size;
    }
    SCOPED_TRACE(describe(pieces));
    const StreamResult streamed = stream_pieces(pieces);
    EXPECT_EQ(merge_adjacent_text(streamed.events), expected);
    EXPECT_EQ(streamed.output.stop, Gemma4Stop::kEndOfTurn);
    EXPECT_TRUE(streamed.output.warnings.empty());
  }
}

TEST(Gemma4Output, MarkerTokensAsWholePieces) {
  const std::vector<std::string> pieces = {"<|channel>", "thought", "\n", "Hmm", ".", "<channel|>",
                                           "Hi", "<|tool_call>", "call", ":", "f", "{", "a", ":",
                                           Q, "x", Q, "}", "<tool_call|>", "<turn|>"};
  const StreamResult streamed = stream_pieces(pieces);
  const Events expected = {reasoning("Hmm."), content("Hi"), tool_call("f", R"({"a":"x"})")};
  EXPECT_EQ(merge_adjacent_text(streamed.events), expected);
  EXPECT_EQ(streamed.output.stop, Gemma4Stop::kEndOfTurn);
}

TEST(Gemma4Output, HoldsOnlyPossibleMarkerPrefix) {
  Gemma4OutputParser parser;
  Events events;

  parser.push("Hello <|tool", events);
  EXPECT_EQ(events, Events{content("Hello ")});

  events.clear();
  parser.push("box|> and", events);
  EXPECT_EQ(events, Events{content("<|toolbox|> and")});

  // "<channel" may still become a stray <channel|>, which is dropped, so it is held back.
  events.clear();
  parser.push(" <channel", events);
  EXPECT_EQ(events, Events{content(" ")});
  events.clear();
  parser.push("s", events);
  EXPECT_EQ(events, Events{content("<channels")});
}

TEST(Gemma4Output, EventsOfEarlierPushesNotMerged) {
  Gemma4OutputParser parser;
  Events events;
  parser.push("ab", events);
  parser.push("cd", events);
  EXPECT_EQ(events, (Events{content("ab"), content("cd")}));
}

TEST(Gemma4Output, BareThoughtOptionOff) {
  Gemma4OutputOptions options;
  options.accept_bare_thought = false;
  const Gemma4Output output = parse_gemma4_output("thought\nabc<channel|>def", options);
  EXPECT_EQ(output.reasoning, "");
  EXPECT_EQ(output.content, "thought\nabcdef");  // the stray <channel|> is dropped

  const StreamResult streamed = stream_pieces({"thou", "ght\n", "abc"}, options);
  EXPECT_EQ(merge_adjacent_text(streamed.events), Events{content("thought\nabc")});
}

TEST(Gemma4Output, FinishIsFinal) {
  Gemma4OutputParser parser;
  Events events;
  parser.push("abc<|chan", events);
  EXPECT_EQ(events, Events{content("abc")});

  events.clear();
  const Gemma4Output output = parser.finish(events);
  EXPECT_EQ(events, Events{content("<|chan")});
  EXPECT_EQ(output.content, "abc<|chan");

  events.clear();
  parser.push("more", events);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(parser.finish(events).content, "abc<|chan");
  EXPECT_TRUE(events.empty());
}

TEST(Gemma4Output, OutputTracksStream) {
  Gemma4OutputParser parser;
  Events events;
  parser.push("<|channel>thought\nr<channel|>c<|tool_call>call:f{}<tool_call|>", events);
  EXPECT_EQ(parser.output().reasoning, "r");
  EXPECT_EQ(parser.output().content, "c");
  ASSERT_EQ(parser.output().tool_calls.size(), 1u);
  EXPECT_EQ(parser.output().tool_calls[0].name, "f");
  EXPECT_EQ(parser.output().stop, Gemma4Stop::kNone);
}

TEST(Gemma4Output, DeepNestingRejected) {
  std::string deep = "<|tool_call>call:f{a:";
  for (int i = 0; i < 5000; ++i) deep += "[";
  for (int i = 0; i < 5000; ++i) deep += "]";
  deep += "}<tool_call|>";
  const Gemma4Output output = parse_gemma4_output(deep);
  EXPECT_TRUE(output.tool_calls.empty());
  EXPECT_EQ(output.content, deep);
  ASSERT_EQ(output.warnings.size(), 1u);
  EXPECT_NE(output.warnings[0].find("deeper than 128"), std::string::npos) << output.warnings[0];
}

TEST(Gemma4Output, NestingAtLimitAccepted) {
  // The arguments object is level 1, so 127 arrays reach the limit of 128.
  std::string body = "call:f{a:";
  std::string expected = R"({"a":)";
  for (int i = 0; i < 127; ++i) {
    body += "[";
    expected += "[";
  }
  for (int i = 0; i < 127; ++i) {
    body += "]";
    expected += "]";
  }
  body += "}";
  expected += "}";

  Gemma4ToolCall call;
  std::string error;
  ASSERT_TRUE(parse_gemma4_tool_call(body, call, error)) << error;
  EXPECT_EQ(call.arguments, expected);
}

TEST(Gemma4Output, InvalidUtf8InStringReplaced) {
  Gemma4ToolCall call;
  std::string error;
  ASSERT_TRUE(parse_gemma4_tool_call("call:f{s:" + Q + "a\xFF" + "b" + Q + "}", call, error))
      << error;
  EXPECT_EQ(call.arguments, "{\"s\":\"a\xEF\xBF\xBD" "b\"}");
}

TEST(Gemma4Output, ToolCallErrorNamesOffset) {
  Gemma4ToolCall call;
  std::string error;
  EXPECT_FALSE(parse_gemma4_tool_call("call:f{a:[1] b:2}", call, error));
  EXPECT_EQ(error, "expected ',' or '}' after the value of \"a\" at byte 13");
  EXPECT_TRUE(call.name.empty());

  EXPECT_FALSE(parse_gemma4_tool_call("\n  call:f{a:[1] b:2}", call, error));
  EXPECT_EQ(error, "expected ',' or '}' after the value of \"a\" at byte 16");
}

TEST(Gemma4Output, LongMalformedCallQuotedShort) {
  // Two-byte characters, so that a cut at an odd byte count would split one.
  std::string key;
  for (int i = 0; i < 300; ++i) key += "é";
  const std::string body = "call:f{" + key + "}";
  const Gemma4Output output = parse_gemma4_output("<|tool_call>" + body + "<tool_call|>");
  ASSERT_EQ(output.warnings.size(), 1u);
  EXPECT_LT(output.warnings[0].size(), 250u) << output.warnings[0];
  EXPECT_NE(output.warnings[0].find("...\""), std::string::npos) << output.warnings[0];
  EXPECT_TRUE(utf8::is_valid(output.warnings[0])) << output.warnings[0];
}

}  // namespace
}  // namespace mxgemma
