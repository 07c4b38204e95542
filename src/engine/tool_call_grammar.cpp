#include "engine/tool_call_grammar.h"

#include <stdexcept>

namespace mxgemma {
namespace {

constexpr std::string_view kOpening = "<|tool_call>call:";
constexpr std::string_view kDelimiter = "<|\"|>";
constexpr std::string_view kClosing = "<tool_call|>";

bool is_whitespace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// Characters that end a bare key or value in parse_gemma4_tool_call.
bool is_structural(char c) { return c == ',' || c == '{' || c == '}' || c == '[' || c == ']'; }

}  // namespace

ToolCallGrammar::ToolCallGrammar(std::vector<std::string> tool_names) : tool_names_(std::move(tool_names)) {
  if (tool_names_.empty()) throw std::invalid_argument("a tool call grammar needs at least one tool name");
}

bool ToolCallGrammar::accepts(std::string_view text, bool allow_comma) const {
  State state = state_;
  return step_text(state, text, allow_comma);
}

void ToolCallGrammar::advance(std::string_view text) {
  if (!step_text(state_, text, true)) {
    throw std::invalid_argument("tool call grammar: the text \"" + std::string(text) + "\" cannot follow here");
  }
}

bool ToolCallGrammar::step_text(State& state, std::string_view text, bool allow_comma) const {
  size_t pos = 0;
  while (pos < text.size()) {
    switch (state.phase) {
      case Phase::kPrefix:
        if (text[pos] != kOpening[state.matched]) return false;
        ++pos;
        if (++state.matched == kOpening.size()) state.phase = Phase::kName;
        break;
      case Phase::kName:
        if (!step_name(state, text[pos])) return false;
        ++pos;
        break;
      case Phase::kBody:
        if (!step_body(state, text, pos, allow_comma)) return false;
        break;
      case Phase::kDone:
        if (text[pos] != kClosing[state.matched]) return false;
        ++pos;
        if (++state.matched == kClosing.size()) state.phase = Phase::kClosed;
        break;
      case Phase::kClosed:
        return false;
    }
  }
  return true;
}

bool ToolCallGrammar::step_name(State& state, char c) const {
  if (c == '{') {
    for (const std::string& name : tool_names_) {
      if (name == state.name) {
        state.phase = Phase::kBody;
        state.stack.push_back('{');
        state.context = Context::kKeyStart;
        return true;
      }
    }
    return false;
  }
  const std::string extended = state.name + c;
  for (const std::string& name : tool_names_) {
    if (name.compare(0, extended.size(), extended) == 0) {
      state.name = extended;
      return true;
    }
  }
  return false;
}

void ToolCallGrammar::close_value(State& state) {
  state.stack.pop_back();
  if (state.stack.empty()) {
    state.phase = Phase::kDone;
    state.matched = 0;
  } else {
    state.context = Context::kAfterValue;
  }
}

bool ToolCallGrammar::step_body(State& state, std::string_view text, size_t& pos, bool allow_comma) const {
  if (text.substr(pos).starts_with(kDelimiter)) {
    pos += kDelimiter.size();
    switch (state.context) {
      case Context::kKeyStart:
      case Context::kKeyAfterComma: state.context = Context::kStringKey; return true;
      case Context::kStringKey: state.context = Context::kColon; return true;
      case Context::kValueStart:
      case Context::kArrayStart: state.context = Context::kStringValue; return true;
      case Context::kStringValue: state.context = Context::kAfterValue; return true;
      default: return false;
    }
  }
  // Any other '<' could start a marker that ends the call in the parser's eyes.
  const char c = text[pos++];
  if (c == '<') return false;
  const bool in_object = !state.stack.empty() && state.stack.back() == '{';
  auto comma = [&] {
    if (!allow_comma) return false;
    state.context = in_object ? Context::kKeyAfterComma : Context::kValueStart;
    return true;
  };
  auto close = [&](char bracket) {
    if ((bracket == '}') != in_object) return false;
    close_value(state);
    return true;
  };
  auto open = [&](char bracket) {
    state.stack.push_back(bracket);
    state.context = bracket == '{' ? Context::kKeyStart : Context::kArrayStart;
    return true;
  };

  switch (state.context) {
    case Context::kStringKey:
    case Context::kStringValue:
      return true;
    case Context::kKeyStart:
      if (is_whitespace(c)) return true;
      if (c == '}') return close(c);
      if (is_structural(c) || c == ':') return false;
      state.context = Context::kBareKey;
      return true;
    case Context::kKeyAfterComma:
      if (is_whitespace(c)) return true;
      if (is_structural(c) || c == ':') return false;
      state.context = Context::kBareKey;
      return true;
    case Context::kBareKey:
      if (c == ':') {
        state.context = Context::kValueStart;
        return true;
      }
      return !is_structural(c);
    case Context::kColon:
      if (is_whitespace(c)) return true;
      if (c != ':') return false;
      state.context = Context::kValueStart;
      return true;
    case Context::kValueStart:
    case Context::kArrayStart:
      if (is_whitespace(c)) return true;
      if (c == '{' || c == '[') return open(c);
      if (c == ']' && state.context == Context::kArrayStart) return close(c);
      if (is_structural(c)) return false;
      state.context = Context::kBareValue;
      return true;
    case Context::kBareValue:
      if (c == ',') return comma();
      if (c == '}' || c == ']') return close(c);
      return c != '{' && c != '[';
    case Context::kAfterValue:
      if (is_whitespace(c)) return true;
      if (c == ',') return comma();
      if (c == '}' || c == ']') return close(c);
      return false;
  }
  return false;
}

std::string ToolCallGrammar::closing_text() const {
  switch (state_.phase) {
    case Phase::kPrefix:
      return std::string(kOpening.substr(state_.matched)) + tool_names_.front() + "{}" + std::string(kClosing);
    case Phase::kName:
      for (const std::string& name : tool_names_) {
        if (name.starts_with(state_.name)) return name.substr(state_.name.size()) + "{}" + std::string(kClosing);
      }
      return "";  // unreachable: step_name keeps the name a prefix of a tool name
    case Phase::kDone:
      return std::string(kClosing.substr(state_.matched));
    case Phase::kClosed:
      return "";
    case Phase::kBody:
      break;
  }
  std::string text;
  switch (state_.context) {
    // NOTE: a call cut right after ',' in an object gets an empty key. The scheduler rejects that
    // comma when fewer than three tokens are left, so only a timeout or stop string can cut here.
    case Context::kKeyAfterComma: text = std::string(kDelimiter) + std::string(kDelimiter) + ":null"; break;
    case Context::kBareKey:
    case Context::kColon: text = ":null"; break;
    case Context::kStringKey: text = std::string(kDelimiter) + ":null"; break;
    case Context::kValueStart: text = "null"; break;
    case Context::kStringValue: text = std::string(kDelimiter); break;
    case Context::kKeyStart:
    case Context::kArrayStart:
    case Context::kBareValue:
    case Context::kAfterValue: break;
  }
  for (auto bracket = state_.stack.rbegin(); bracket != state_.stack.rend(); ++bracket) text += *bracket == '{' ? '}' : ']';
  return text + std::string(kClosing);
}

}  // namespace mxgemma
