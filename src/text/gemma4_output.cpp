// Gemma 4 output parser: a marker-driven state machine for the stream, and a recursive-descent
// reader for the tool-call argument syntax.
#include "text/gemma4_output.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <span>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace mxgemma {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kChannelStart = "<|channel>";
constexpr std::string_view kChannelEnd = "<channel|>";
constexpr std::string_view kToolCallStart = "<|tool_call>";
constexpr std::string_view kToolCallEnd = "<tool_call|>";
constexpr std::string_view kTurnEnd = "<turn|>";
constexpr std::string_view kToolResponseStart = "<|tool_response>";
constexpr std::string_view kStringDelimiter = "<|\"|>";
constexpr std::string_view kBareThought = "thought\n";

// The markers that change state in content and in reasoning.
constexpr std::array<std::string_view, 4> kContentMarkers = {kChannelStart, kToolCallStart,
                                                             kTurnEnd, kToolResponseStart};
constexpr std::array<std::string_view, 5> kReasoningMarkers = {
    kChannelEnd, kChannelStart, kToolCallStart, kTurnEnd, kToolResponseStart};
// Gemma 4 control tokens that mean nothing where they stand (a <channel|> in content, a <tool|>
// outside a declaration...): dropped with a warning, as runtimes that decode with
// skip_special_tokens drop them, so no marker reaches the visible text.
constexpr std::array<std::string_view, 8> kStrayMarkers = {
    "<channel|>", "<|tool>", "<tool|>", "<tool_call|>", "<tool_response|>", "<|turn>", "<|think|>", "<|\"|>"};
// Any of these ends the text of a tool call, but only <tool_call|> completes it.
constexpr std::array<std::string_view, 3> kToolCallEndMarkers = {kToolCallEnd, kTurnEnd,
                                                                 kToolResponseStart};
constexpr size_t kMaxEndMarkerSize = kToolResponseStart.size();

// Longer runs after <|channel> are reasoning text, not a channel name.
constexpr size_t kMaxChannelNameSize = 64;
// Deeper argument nesting is rejected, which bounds the reader's recursion.
constexpr int kMaxArgumentDepth = 128;
// Malformed calls, and keys and tool names, are quoted in warnings up to these sizes in bytes.
constexpr size_t kMaxQuotedCallSize = 120;
constexpr size_t kMaxQuotedKeySize = 40;

// True when `text` is shorter than `marker` and starts it, so more text may complete the marker.
bool is_partial_marker(std::string_view text, std::string_view marker) {
  return text.size() < marker.size() && marker.starts_with(text);
}

bool is_ascii_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_channel_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Tool names: ASCII letters, digits, '_', '-', '.', and any non-ASCII character.
bool is_tool_name_char(char c) {
  return is_channel_name_char(c) || c == '.' || static_cast<unsigned char>(c) >= 0x80;
}

std::string_view trim_ascii_whitespace(std::string_view text) {
  while (!text.empty() && is_ascii_whitespace(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ascii_whitespace(text.back())) text.remove_suffix(1);
  return text;
}

// Quotes model text for a one-line message: cut to at most `max_size` bytes at a UTF-8 character
// boundary, line breaks as spaces.
std::string quote_for_message(std::string_view text, size_t max_size) {
  size_t size = std::min(max_size, text.size());
  const auto is_continuation_byte = [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
  };
  while (size > 0 && size < text.size() && is_continuation_byte(text[size])) --size;
  std::string quoted(text.substr(0, size));
  if (size < text.size()) quoted += "...";
  for (char& c : quoted) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return "\"" + quoted + "\"";
}

// Reads the argument syntax of a tool call. Each method leaves pos_ after what it read and
// throws ArgumentError with the byte offset of the problem.
class ArgumentReader {
 public:
  struct ArgumentError {
    size_t offset;
    std::string message;
  };

  explicit ArgumentReader(std::string_view text, size_t pos) : text_(text), pos_(pos) {}

  size_t position() const { return pos_; }

  void skip_whitespace() {
    while (pos_ < text_.size() && is_ascii_whitespace(text_[pos_])) ++pos_;
  }

  ordered_json read_object(int depth) {
    check_depth(depth);
    expect('{');
    ordered_json object = ordered_json::object();
    skip_whitespace();
    if (consume('}')) return object;

    while (true) {
      skip_whitespace();
      std::string key = read_key();
      skip_whitespace();
      const std::string quoted_key = quote_for_message(key, kMaxQuotedKeySize);
      if (!consume(':')) fail("expected ':' after key " + quoted_key);
      skip_whitespace();
      // A repeated key keeps its first position and takes the last value, as a Python dict does.
      object[key] = read_value(depth + 1);
      skip_whitespace();
      if (consume('}')) return object;
      if (!consume(',')) fail("expected ',' or '}' after the value of " + quoted_key);
    }
  }

 private:
  [[noreturn]] void fail(std::string message) const {
    throw ArgumentError{pos_, std::move(message)};
  }

  void check_depth(int depth) const {
    if (depth > kMaxArgumentDepth) {
      fail("arguments nest deeper than " + std::to_string(kMaxArgumentDepth) + " levels");
    }
  }

  bool at_string_delimiter() const { return text_.substr(pos_).starts_with(kStringDelimiter); }

  bool consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }

  // Reads <|"|>...<|"|> and returns the characters between the delimiters unchanged.
  std::string read_delimited_string() {
    pos_ += kStringDelimiter.size();
    const size_t end = text_.find(kStringDelimiter, pos_);
    if (end == std::string_view::npos) fail("unterminated <|\"|> string");
    std::string value(text_.substr(pos_, end - pos_));
    pos_ = end + kStringDelimiter.size();
    return value;
  }

  // Reads the text of a bare key or value up to the next structural character, trimmed.
  std::string_view read_bare(std::string_view stop_chars) {
    const size_t start = pos_;
    while (pos_ < text_.size() && stop_chars.find(text_[pos_]) == std::string_view::npos &&
           !at_string_delimiter()) {
      ++pos_;
    }
    return trim_ascii_whitespace(text_.substr(start, pos_ - start));
  }

  // Keys are bare words in Gemma's syntax. A <|"|> key or a JSON string key is decoded too.
  std::string read_key() {
    if (at_string_delimiter()) return read_delimited_string();
    const std::string_view key = read_bare(":,{}[]");
    if (key.empty()) fail("expected a key");
    if (key.front() == '"') {
      const ordered_json decoded = ordered_json::parse(key, nullptr, false);
      if (decoded.is_string()) return decoded.get<std::string>();
    }
    return std::string(key);
  }

  ordered_json read_value(int depth) {
    if (at_string_delimiter()) return read_delimited_string();
    if (pos_ < text_.size() && text_[pos_] == '{') return read_object(depth);
    if (pos_ < text_.size() && text_[pos_] == '[') return read_array(depth);

    const std::string_view bare = read_bare(",{}[]");
    if (bare.empty()) fail("expected a value");
    return convert_bare_value(bare);
  }

  ordered_json read_array(int depth) {
    check_depth(depth);
    expect('[');
    ordered_json array = ordered_json::array();
    skip_whitespace();
    if (consume(']')) return array;

    while (true) {
      skip_whitespace();
      array.push_back(read_value(depth + 1));
      skip_whitespace();
      if (consume(']')) return array;
      if (!consume(',')) fail("expected ',' or ']' in an array");
    }
  }

  // mlx-vlm (mlx_vlm/tool_parsers/gemma4.py @ 236a9d71) runs a bare value through Python's
  // json.loads and keeps the text as a string when that fails. This does the same with a strict
  // JSON parser, so 3, -1.5, true, null become JSON values and Paris, 1., NaN stay strings.
  // NOTE: json.loads would turn NaN and Infinity into floats, and keeps integers beyond 64 bits
  // exact. Here NaN and Infinity stay strings and such integers become doubles.
  static ordered_json convert_bare_value(std::string_view bare) {
    ordered_json value = ordered_json::parse(bare, nullptr, false);
    if (value.is_discarded()) return std::string(bare);
    if (value.is_number_float() && !std::isfinite(value.get<double>())) return std::string(bare);
    return value;
  }

  std::string_view text_;
  size_t pos_;
};

}  // namespace

bool parse_gemma4_tool_call(std::string_view body, Gemma4ToolCall& call, std::string& error) {
  const std::string_view trimmed = trim_ascii_whitespace(body);
  // Error offsets count bytes of `body`, including the whitespace trimmed here.
  const size_t lead = body.empty() ? 0 : static_cast<size_t>(trimmed.data() - body.data());
  constexpr std::string_view kCallPrefix = "call:";
  if (!trimmed.starts_with(kCallPrefix)) {
    error = "expected \"call:NAME{\" at the start";
    return false;
  }

  const size_t name_start = kCallPrefix.size();
  size_t name_end = name_start;
  while (name_end < trimmed.size() && is_tool_name_char(trimmed[name_end])) ++name_end;
  if (name_end == name_start) {
    error = "missing tool name after \"call:\"";
    return false;
  }
  const std::string name(trimmed.substr(name_start, name_end - name_start));
  if (name_end == trimmed.size() || trimmed[name_end] != '{') {
    error = "expected '{' after tool name " + quote_for_message(name, kMaxQuotedKeySize) +
            " at byte " + std::to_string(lead + name_end);
    return false;
  }

  ArgumentReader reader(trimmed, name_end);
  ordered_json arguments;
  try {
    arguments = reader.read_object(1);
  } catch (const ArgumentReader::ArgumentError& argument_error) {
    error = argument_error.message + " at byte " + std::to_string(lead + argument_error.offset);
    return false;
  }
  reader.skip_whitespace();
  if (reader.position() != trimmed.size()) {
    error = "unexpected text after the closing '}' at byte " +
            std::to_string(lead + reader.position());
    return false;
  }

  call.name = name;
  // Strings are copied from the model output unchecked, so invalid UTF-8 becomes U+FFFD here.
  call.arguments = arguments.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  return true;
}

Gemma4OutputParser::Gemma4OutputParser(Gemma4OutputOptions options)
    : options_(options), mode_(options.accept_bare_thought ? Mode::kStart : Mode::kContent) {}

void Gemma4OutputParser::push(std::string_view piece, std::vector<Gemma4Event>& events) {
  if (finished_) return;
  pending_.append(piece);
  events_begin_ = events.size();
  process(false, events);
}

const Gemma4Output& Gemma4OutputParser::finish(std::vector<Gemma4Event>& events) {
  if (finished_) return output_;
  events_begin_ = events.size();
  process(true, events);
  if (ignored_bytes_ > 0) {
    output_.warnings.push_back("ignored " + std::to_string(ignored_bytes_) +
                               " bytes of output after the end marker");
  }
  finished_ = true;
  return output_;
}

void Gemma4OutputParser::process(bool final, std::vector<Gemma4Event>& events) {
  while (pos_ < pending_.size()) {
    bool progressed = false;
    switch (mode_) {
      case Mode::kStart:
        progressed = step_start(final);
        break;
      case Mode::kContent:
      case Mode::kReasoning:
        progressed = step_text(final, events);
        break;
      case Mode::kChannelName:
        progressed = step_channel_name(final);
        break;
      case Mode::kToolCall:
        progressed = step_tool_call(final, events);
        break;
      case Mode::kStopped:
        ignored_bytes_ += pending_.size() - pos_;
        pos_ = pending_.size();
        progressed = true;
        break;
    }
    if (!progressed) break;
  }

  // Drop the decided text so that pending_ holds only the undecided tail.
  if (pos_ > 0) {
    pending_.erase(0, pos_);
    call_scan_ -= std::min(call_scan_, pos_);
    pos_ = 0;
  }
}

// Decides whether the output opens with a bare "thought\n" (see accept_bare_thought).
bool Gemma4OutputParser::step_start(bool final) {
  const std::string_view text = std::string_view(pending_).substr(pos_);
  size_t lead = 0;
  while (lead < text.size() && is_ascii_whitespace(text[lead])) ++lead;
  const std::string_view rest = text.substr(lead);

  if (rest.starts_with(kBareThought)) {
    pos_ += lead + kBareThought.size();
    mode_ = Mode::kReasoning;
    return true;
  }
  if (!final && (rest.empty() || is_partial_marker(rest, kBareThought))) return false;
  mode_ = Mode::kContent;
  return true;
}

// Emits content or reasoning up to the next marker of the current mode, or handles that marker.
bool Gemma4OutputParser::step_text(bool final, std::vector<Gemma4Event>& events) {
  const Gemma4Event::Kind kind =
      mode_ == Mode::kReasoning ? Gemma4Event::Kind::kReasoning : Gemma4Event::Kind::kContent;
  const std::string_view text = std::string_view(pending_).substr(pos_);

  const size_t open = text.find('<');
  if (open != 0) {
    const size_t size = open == std::string_view::npos ? text.size() : open;
    emit_text(kind, text.substr(0, size), events);
    pos_ += size;
    return true;
  }

  const std::span<const std::string_view> markers =
      mode_ == Mode::kReasoning ? std::span<const std::string_view>(kReasoningMarkers)
                                : std::span<const std::string_view>(kContentMarkers);
  for (const std::string_view marker : markers) {
    if (text.starts_with(marker)) {
      pos_ += marker.size();
      handle_text_marker(marker);
      return true;
    }
  }
  for (const std::string_view marker : kStrayMarkers) {
    if (text.starts_with(marker)) {
      pos_ += marker.size();
      output_.warnings.push_back("dropped a stray " + std::string(marker) + " from the output");
      return true;
    }
  }
  if (!final) {
    for (const std::string_view marker : markers) {
      if (is_partial_marker(text, marker)) return false;
    }
    for (const std::string_view marker : kStrayMarkers) {
      if (is_partial_marker(text, marker)) return false;
    }
  }

  emit_text(kind, text.substr(0, 1), events);
  pos_ += 1;
  return true;
}

void Gemma4OutputParser::handle_text_marker(std::string_view marker) {
  if (marker == kChannelStart) {
    if (mode_ == Mode::kReasoning) {
      output_.warnings.push_back("ignored a <|channel> inside an open channel");
      return;
    }
    mode_ = Mode::kChannelName;
  } else if (marker == kChannelEnd) {
    mode_ = Mode::kContent;
  } else if (marker == kToolCallStart) {
    mode_before_call_ = mode_;
    mode_ = Mode::kToolCall;
    call_scan_ = pos_;
  } else if (marker == kTurnEnd) {
    output_.stop = Gemma4Stop::kEndOfTurn;
    mode_ = Mode::kStopped;
  } else if (marker == kToolResponseStart) {
    output_.stop = Gemma4Stop::kToolResponse;
    mode_ = Mode::kStopped;
  }
}

// Drops the channel name after <|channel>: a run of word characters ended by "\n", or by
// <channel|> for an empty channel. Anything else after <|channel> is reasoning text.
bool Gemma4OutputParser::step_channel_name(bool final) {
  const std::string_view text = std::string_view(pending_).substr(pos_);
  size_t size = 0;
  while (size < text.size() && size <= kMaxChannelNameSize && is_channel_name_char(text[size])) {
    ++size;
  }

  if (size > kMaxChannelNameSize) {
    mode_ = Mode::kReasoning;
    return true;
  }
  if (size == text.size()) {
    if (!final) return false;
    pos_ += size;
    mode_ = Mode::kReasoning;
    return true;
  }

  const std::string_view after = text.substr(size);
  if (size > 0 && after.front() == '\n') {
    pos_ += size + 1;
    mode_ = Mode::kReasoning;
    return true;
  }
  if (size > 0 && after.starts_with(kChannelEnd)) {
    pos_ += size + kChannelEnd.size();
    mode_ = Mode::kContent;
    return true;
  }
  if (size > 0 && !final && is_partial_marker(after, kChannelEnd)) return false;

  mode_ = Mode::kReasoning;
  return true;
}

// Collects the call text until an end marker; parses it when <tool_call|> arrives.
bool Gemma4OutputParser::step_tool_call(bool final, std::vector<Gemma4Event>& events) {
  const std::string_view text(pending_);
  size_t end = std::string_view::npos;
  std::string_view end_marker;
  for (const std::string_view marker : kToolCallEndMarkers) {
    const size_t found = text.find(marker, call_scan_);
    if (found < end) {
      end = found;
      end_marker = marker;
    }
  }

  if (end == std::string_view::npos) {
    if (!final) {
      // A marker may straddle the next piece, so the search resumes just before the tail.
      const size_t tail = kMaxEndMarkerSize - 1;
      call_scan_ = std::max(pos_, text.size() > tail ? text.size() - tail : size_t{0});
      return false;
    }
    const std::string_view body = text.substr(pos_);
    pos_ = text.size();
    close_tool_call(body, false, events);
    return true;
  }

  const std::string_view body = text.substr(pos_, end - pos_);
  const bool terminated = end_marker == kToolCallEnd;
  // The other end markers stay pending for the text mode to handle.
  pos_ = terminated ? end + end_marker.size() : end;
  close_tool_call(body, terminated, events);
  return true;
}

void Gemma4OutputParser::close_tool_call(std::string_view body, bool terminated,
                                         std::vector<Gemma4Event>& events) {
  mode_ = mode_before_call_;
  const Gemma4Event::Kind kind = mode_ == Mode::kReasoning ? Gemma4Event::Kind::kReasoning
                                                           : Gemma4Event::Kind::kContent;
  const std::string where = kind == Gemma4Event::Kind::kReasoning ? "reasoning" : "content";

  std::string error = "no <tool_call|> before the end of the output";
  Gemma4ToolCall call;
  if (terminated && parse_gemma4_tool_call(body, call, error)) {
    emit_tool_call(std::move(call), events);
    return;
  }

  std::string raw = std::string(kToolCallStart) + std::string(body);
  if (terminated) raw += kToolCallEnd;
  output_.warnings.push_back((terminated ? "malformed" : "unterminated") +
                             std::string(" tool call kept as ") + where + ": " + error + " in " +
                             quote_for_message(body, kMaxQuotedCallSize));
  emit_text(kind, raw, events);
}

void Gemma4OutputParser::emit_text(Gemma4Event::Kind kind, std::string_view text,
                                   std::vector<Gemma4Event>& events) {
  if (text.empty()) return;
  std::string& total =
      kind == Gemma4Event::Kind::kReasoning ? output_.reasoning : output_.content;
  total.append(text);

  if (events.size() > events_begin_ && events.back().kind == kind) {
    events.back().text.append(text);
    return;
  }
  Gemma4Event event;
  event.kind = kind;
  event.text = std::string(text);
  events.push_back(std::move(event));
}

void Gemma4OutputParser::emit_tool_call(Gemma4ToolCall call, std::vector<Gemma4Event>& events) {
  output_.tool_calls.push_back(call);
  Gemma4Event event;
  event.kind = Gemma4Event::Kind::kToolCall;
  event.tool_call = std::move(call);
  events.push_back(std::move(event));
}

Gemma4Output parse_gemma4_output(std::string_view text, Gemma4OutputOptions options) {
  Gemma4OutputParser parser(options);
  std::vector<Gemma4Event> events;
  parser.push(text, events);
  return parser.finish(events);
}

}  // namespace mxgemma
