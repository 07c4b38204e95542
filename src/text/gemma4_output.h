// Streaming parser for Gemma 4 model output: splits the generated text into reasoning, visible
// content and tool calls.
//
// Output syntax (Gemma 4 prompt-format documentation and chat templates):
//   <|channel>thought\n ... <channel|>   reasoning; the channel name may differ
//   <|tool_call>call:NAME{key:value,...}<tool_call|>
//                                       a tool call: strings are <|"|>...<|"|>, keys, numbers,
//                                       true/false/null are bare, objects and arrays may nest
//   <turn|>                             end of the turn
//   <|tool_response>                    the model waits for tool results
// Everything else is content. Goals: the same result for every split of the text into pieces, no
// part of a recognized marker in any text delta, and no exception on malformed model output.
// Non-goals: tool call ids, checking names against the request's tools, trimming whitespace.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mxgemma {

struct Gemma4ToolCall {
  std::string name;
  // Compact JSON object with the keys in the order of the call, e.g. {"city":"Paris","days":3}.
  std::string arguments;

  bool operator==(const Gemma4ToolCall&) const = default;
};

struct Gemma4Event {
  enum class Kind { kReasoning, kContent, kToolCall };

  Kind kind = Kind::kContent;
  // The new text for kReasoning and kContent. Empty for kToolCall.
  std::string text;
  // The completed call for kToolCall.
  Gemma4ToolCall tool_call;

  bool operator==(const Gemma4Event&) const = default;
};

// The end marker that stopped the output, if any.
enum class Gemma4Stop {
  kNone,          // the text ran out without an end marker (max tokens, stop string, cut stream)
  kEndOfTurn,     // <turn|>
  kToolResponse,  // <|tool_response>: the runtime should run the calls and append the results
};

// Everything parsed so far: the concatenation of all events of each kind, in stream order.
struct Gemma4Output {
  std::string reasoning;
  std::string content;
  std::vector<Gemma4ToolCall> tool_calls;
  // One line per problem in the model output: a malformed or unterminated tool call (kept as
  // text), a nested <|channel>, text after the end marker (ignored).
  std::vector<std::string> warnings;
  Gemma4Stop stop = Gemma4Stop::kNone;
};

struct Gemma4OutputOptions {
  // Reads output that starts with "thought\n" (after optional whitespace, which is dropped) as a
  // thought channel whose <|channel> was lost, as vMLX's Gemma 4 reasoning parser does
  // (jjang-ai/vmlx vmlx_engine/reasoning/gemma4_parser.py @ 02d0484c).
  bool accept_bare_thought = true;
};

// Incremental parser, fed the decoded text of each generated token in order. Text that may begin
// a marker (e.g. a trailing "<|tool") is held back until the next piece decides it, so markers
// split across pieces are recognized. A tool call is emitted once its <tool_call|> arrives.
class Gemma4OutputParser {
 public:
  explicit Gemma4OutputParser(Gemma4OutputOptions options = {});

  // Appends the events that `piece` completes to `events`. Consecutive text of one kind within
  // one call becomes one event. Text after <turn|> or <|tool_response> is ignored.
  void push(std::string_view piece, std::vector<Gemma4Event>& events);

  // Ends the stream: appends the events for the held-back text to `events` (a partial marker
  // becomes text, an unterminated tool call becomes text with a warning, an unclosed channel stays
  // reasoning) and returns the final output. Later calls to push or finish change nothing.
  const Gemma4Output& finish(std::vector<Gemma4Event>& events);

  // The output of the events emitted so far.
  const Gemma4Output& output() const { return output_; }

 private:
  enum class Mode { kStart, kContent, kChannelName, kReasoning, kToolCall, kStopped };

  // Consumes as much of the pending text as can be decided. `final` means no more text follows.
  void process(bool final, std::vector<Gemma4Event>& events);
  bool step_start(bool final);
  bool step_text(bool final, std::vector<Gemma4Event>& events);
  bool step_channel_name(bool final);
  bool step_tool_call(bool final, std::vector<Gemma4Event>& events);
  void handle_text_marker(std::string_view marker);
  void close_tool_call(std::string_view body, bool terminated, std::vector<Gemma4Event>& events);
  void emit_text(Gemma4Event::Kind kind, std::string_view text, std::vector<Gemma4Event>& events);
  void emit_tool_call(Gemma4ToolCall call, std::vector<Gemma4Event>& events);

  Gemma4OutputOptions options_;
  Mode mode_;
  // The text mode (kContent or kReasoning) that a tool call interrupted, resumed after the call.
  Mode mode_before_call_ = Mode::kContent;
  // Received text from pending_[pos_] on is not yet decided.
  std::string pending_;
  size_t pos_ = 0;
  // In kToolCall, the end-marker search restarts here (an index into pending_).
  size_t call_scan_ = 0;
  // Bytes received after the end marker.
  size_t ignored_bytes_ = 0;
  // Events before this index of the caller's vector came from earlier calls and are not merged.
  size_t events_begin_ = 0;
  bool finished_ = false;
  Gemma4Output output_;
};

// Parses a whole output at once; the result equals streaming the text in any pieces.
Gemma4Output parse_gemma4_output(std::string_view text, Gemma4OutputOptions options = {});

// Converts the text between <|tool_call> and <tool_call|>, e.g. call:f{a:<|"|>x<|"|>,b:[1,2]},
// into a call. Returns false and sets `error` to a one-line reason when the text is malformed.
bool parse_gemma4_tool_call(std::string_view body, Gemma4ToolCall& call, std::string& error);

}  // namespace mxgemma
