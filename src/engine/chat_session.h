// A multi-turn chat as `mxgemma chat` runs it: the history, the chat commands, attached images
// and audio clips, tool calls and their results. Input comes one line at a time. The reply text streams to `out`, reasoning to
// `reasoning`, and errors to `errors`. The reply generator is passed in, so the conversation logic
// runs the same with the model and with a scripted generator in tests.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "engine/chat_prompt.h"
#include "engine/generator.h"
#include "engine/media_attachment.h"
#include "text/gemma4_output.h"
#include "text/tokenizer.h"

namespace mxgemma {

// Generates one reply to `prompt` (its tokens, and the soft tokens of the attachments of the
// whole history), streaming text through `on_text` (which returns false to stop). `turn` counts
// the replies of the session from 0, e.g. to vary the seed. Throws for a prompt the generator
// cannot run (too long for its context), and the session reports it.
using ChatReplyGenerator = std::function<GenerationResult(const MediaPrompt& prompt, int turn,
                                                          const TextCallback& on_text)>;

// Encodes one image or audio clip for the conversation (encode_attachment with the model's
// encoder). Throws std::invalid_argument naming the input when it cannot be used.
using ChatMediaEncoder = std::function<MediaAttachment(const MediaInput& input)>;

struct ChatStreams {
  std::ostream& out;        // content, and one {"tool_call": ...} JSON line per call
  std::ostream& reasoning;  // the thought channel
  std::ostream& errors;     // one "error: ..." line per rejected command or failed turn, and /help
  bool dim_reasoning = false;  // wraps reasoning in the terminal's dim escape codes
};

// Reads an OpenAI tools array from `path`. Throws std::invalid_argument "<path>: <field>: <problem>"
// when the file is missing, is not JSON, or an entry is not {"type": "function", "function": {name, ...}}.
nlohmann::ordered_json read_tools_file(const std::string& path);

class ChatSession {
 public:
  // `tools` is an OpenAI tools array (empty for none). The bundle supplies the special tokens.
  ChatSession(const Bundle& bundle, const Tokenizer& tokenizer, SelectedChatTemplate chat_template,
              ChatReplyGenerator generate, ChatStreams streams, std::string system, bool enable_thinking,
              nlohmann::ordered_json tools);

  // Handles one input line: a user message, or /reset, /system TEXT, /image FILE, /audio FILE,
  // /tool-result NAME RESULT, /help, /exit. Returns false when the session should end.
  bool handle_line(std::string line);

  // Sets how /image and /audio encode a file. Without an encoder, they report an error.
  void set_media_encoder(ChatMediaEncoder encoder) { encode_media_ = std::move(encoder); }

  // Reads and encodes `path` and attaches it to the next user message, which lists its images,
  // then its audio clips, then its text. Throws std::invalid_argument naming the file when it is
  // missing or cannot be used, and the attachment is then not added.
  void attach(const std::string& path, MediaInput::Kind kind);

  // Extra template keywords for every prompt (e.g. tool_choice); enable_thinking here wins.
  void set_template_kwargs(nlohmann::ordered_json kwargs) { template_kwargs_ = std::move(kwargs); }

  // Called with the result of each reply that ran, e.g. to print statistics.
  void on_reply(std::function<void(const GenerationResult&)> callback) { on_reply_ = std::move(callback); }

  // The history in OpenAI form, the system message excluded. A user message with attachments has
  // content parts: {"type": "image" or "audio", "path": FILE} each, then {"type": "text"}.
  const nlohmann::ordered_json& messages() const { return messages_; }
  // The attachments waiting for the next user message.
  const std::vector<MediaAttachment>& pending_attachments() const { return pending_media_; }
  // The prompt text of the last reply, as the template rendered it.
  const std::string& last_prompt() const { return last_prompt_; }

 private:
  // A tool call of the last assistant message that has no tool message yet.
  struct PendingCall {
    std::string id;
    std::string name;
    bool answered = false;
  };

  bool waiting_for_results() const;
  std::string pending_names() const;
  void report_error(const std::string& message);
  void reset();
  void add_tool_result(const std::string& argument);
  void add_user_message(const std::string& text);
  void attach_command(const std::string& command, const std::string& path);
  void print_help();
  void write_events(const std::vector<Gemma4Event>& events, size_t begin);
  bool generate_reply();
  void record_reply(const Gemma4Output& output);

  const Bundle& bundle_;
  const Tokenizer& tokenizer_;
  SelectedChatTemplate template_;
  ChatReplyGenerator generate_;
  ChatStreams streams_;
  std::string system_;
  bool enable_thinking_;
  nlohmann::ordered_json tools_;
  nlohmann::ordered_json template_kwargs_ = nlohmann::ordered_json::object();
  std::function<void(const GenerationResult&)> on_reply_;
  ChatMediaEncoder encode_media_;

  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
  std::vector<PendingCall> pending_calls_;
  std::vector<MediaAttachment> media_;          // the attachments of messages_, in order
  std::vector<MediaAttachment> pending_media_;  // attached to the next user message
  int turns_ = 0;  // replies so far, also used to make tool call ids unique
  std::string last_prompt_;
  bool wrote_content_ = false;
  bool wrote_reasoning_ = false;
};

}  // namespace mxgemma
