// Constrained decoding of Gemma 4 tool calls: a character-level recognizer of
//   <|tool_call>call:NAME{key:value,...}<tool_call|>
// (values: <|"|>strings<|"|>, bare scalars, nested objects and arrays), as parse_gemma4_tool_call
// reads it. The sampler checks each token's text against it, so a call that is started always
// parses, with NAME one of the request's tools.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mxgemma {

class ToolCallGrammar {
 public:
  // `tool_names`: the functions the call may name; must not be empty.
  explicit ToolCallGrammar(std::vector<std::string> tool_names);

  // Whether `text` may follow the text accepted so far. allow_comma false also rejects a ','
  // between values, so that no new key or element is opened when few tokens are left.
  bool accepts(std::string_view text, bool allow_comma = true) const;
  // Appends `text`; it must be accepted.
  void advance(std::string_view text);

  // The call is closed by <tool_call|>.
  bool closed() const { return state_.phase == Phase::kClosed; }
  // The shortest text that completes the call from here, <tool_call|> included: the rest of a
  // name, closing delimiters and brackets, and null for a key whose value is missing.
  std::string closing_text() const;

 private:
  enum class Phase { kPrefix, kName, kBody, kDone, kClosed };
  enum class Context {
    kKeyStart,            // after '{': a key or '}'
    kKeyAfterComma,       // after ',' in an object: a key
    kBareKey,             // inside a bare key
    kStringKey,           // inside a <|"|> key
    kColon,               // after a <|"|> key: ':'
    kValueStart,          // after ':' or ',' in an array: a value
    kArrayStart,          // after '[': a value or ']'
    kBareValue,           // inside a bare value
    kStringValue,         // inside a <|"|> string
    kAfterValue,          // ',' or the closing bracket
  };
  struct State {
    Phase phase = Phase::kPrefix;
    size_t matched = 0;  // bytes of the prefix or closing marker matched
    std::string name;
    std::vector<char> stack;  // open '{' and '['
    Context context = Context::kKeyStart;
  };

  bool step_text(State& state, std::string_view text, bool allow_comma) const;
  bool step_body(State& state, std::string_view text, size_t& pos, bool allow_comma) const;
  bool step_name(State& state, char c) const;
  static void close_value(State& state);

  std::vector<std::string> tool_names_;
  State state_;
};

}  // namespace mxgemma
