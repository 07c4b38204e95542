#include "engine/chat_session.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "util/json_depth.h"
#include "util/log.h"

namespace mxgemma {
namespace {

using Json = nlohmann::ordered_json;

[[noreturn]] void fail_tools(const std::string& path, const std::string& field, const std::string& problem) {
  throw std::invalid_argument(path + ": " + field + ": " + problem);
}

// Arguments as the template and the tool_call line show them: a JSON object, or {} when the
// parser could not make one.
Json arguments_object(const std::string& arguments) {
  Json parsed = Json::parse(arguments, nullptr, /*allow_exceptions=*/false);
  return parsed.is_object() && !json_deeper_than(parsed, kMaxJsonDepth) ? parsed : Json::object();
}

}  // namespace

Json read_tools_file(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::invalid_argument(path + ": tools file not found or not readable; check the --tools path");
  std::ostringstream text;
  text << stream.rdbuf();
  Json tools;
  try {
    tools = Json::parse(text.str());
  } catch (const nlohmann::json::parse_error& error) {
    throw std::invalid_argument(path + ": invalid JSON: " + error.what());
  }
  if (!tools.is_array()) fail_tools(path, "tools", "expected an array, found " + std::string(tools.type_name()));
  if (json_deeper_than(tools, kMaxJsonDepth)) {
    fail_tools(path, "tools", "nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  }

  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string field = "tools[" + std::to_string(i) + "]";
    const Json& tool = tools[i];
    if (!tool.is_object()) fail_tools(path, field, "expected an object, found " + std::string(tool.type_name()));
    if (!tool.contains("type") || tool["type"] != "function") fail_tools(path, field + ".type", "expected \"function\"");
    if (!tool.contains("function") || !tool["function"].is_object()) {
      fail_tools(path, field + ".function", "missing or not an object");
    }
    const Json& function = tool["function"];
    if (!function.contains("name") || !function["name"].is_string() || function["name"].get<std::string>().empty()) {
      fail_tools(path, field + ".function.name", "missing or not a non-empty string");
    }
    if (function.contains("description") && !function["description"].is_string()) {
      fail_tools(path, field + ".function.description", "expected a string");
    }
    if (function.contains("parameters") && !function["parameters"].is_object()) {
      fail_tools(path, field + ".function.parameters", "expected a JSON Schema object");
    }
  }
  return tools;
}

ChatSession::ChatSession(const Bundle& bundle, const Tokenizer& tokenizer, SelectedChatTemplate chat_template,
                         ChatReplyGenerator generate, ChatStreams streams, std::string system, bool enable_thinking,
                         Json tools)
    : bundle_(bundle),
      tokenizer_(tokenizer),
      template_(std::move(chat_template)),
      generate_(std::move(generate)),
      streams_(streams),
      system_(std::move(system)),
      enable_thinking_(enable_thinking),
      tools_(std::move(tools)) {}

bool ChatSession::handle_line(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return true;
  if (line[0] != '/') {
    if (waiting_for_results()) {
      report_error("the model is waiting for tool results (" + pending_names() +
                   "); answer each with /tool-result NAME RESULT, or /reset");
      return true;
    }
    add_user_message(line);
    return true;
  }

  const size_t space = line.find(' ');
  const std::string command = line.substr(0, space);
  const std::string argument = space == std::string::npos ? "" : line.substr(space + 1);
  if (command == "/exit") return false;
  if (command == "/reset") {
    reset();
    MXG_LOG_DEBUG("history cleared; the system message is kept");
  } else if (command == "/system") {
    system_ = argument;
    reset();
    MXG_LOG_DEBUG("system message set to \"%s\"; history cleared", argument.c_str());
  } else if (command == "/image" || command == "/audio") {
    attach_command(command, argument);
  } else if (command == "/tool-result") {
    add_tool_result(argument);
  } else if (command == "/help") {
    print_help();
  } else {
    report_error("unknown command " + command +
                 "; the commands are /reset, /system TEXT, /image FILE, /audio FILE, /tool-result NAME RESULT, /help, "
                 "/exit");
  }
  return true;
}

void ChatSession::print_help() {
  streams_.errors << "Type a message and press Enter to send it. Commands:\n"
                     "  /image FILE               attach an image to the next message\n"
                     "  /audio FILE               attach an audio clip (at most 30 s) to the next message\n"
                     "  /reset                    clear the history and pending attachments, keep the system message\n"
                     "  /system TEXT              set the system message and clear the history\n"
                     "  /tool-result NAME RESULT  answer the model's pending tool call NAME\n"
                     "  /help                     show this list\n"
                     "  /exit                     quit (end of input also quits)\n"
                     "A message lists its images first, then its audio clips, then its text.\n"
                  << std::flush;
}

void ChatSession::attach(const std::string& path, MediaInput::Kind kind) {
  if (!encode_media_) {
    throw std::invalid_argument(std::string(media_kind_name(kind)) + " file " + path +
                                ": this chat was started without a media encoder");
  }
  MediaAttachment attachment = encode_media_(read_media_file(path, kind));
  MXG_LOG_INFO("%s %s: %d soft tokens, encoded in %.2f s; attached to the next message", media_kind_name(kind),
               path.c_str(), attachment.soft_tokens, attachment.encode_seconds);
  pending_media_.push_back(std::move(attachment));
}

// Handles /image FILE and /audio FILE: a file that cannot be used is reported and not attached.
void ChatSession::attach_command(const std::string& command, const std::string& path) {
  if (path.empty()) {
    report_error(command + ": missing file path; use " + command + " FILE");
    return;
  }
  try {
    attach(path, command == "/image" ? MediaInput::Kind::image : MediaInput::Kind::audio);
  } catch (const std::exception& error) {
    report_error(error.what());
  }
}

// Appends the user message with the pending attachments, images before audio as the content parts
// list them, and generates the reply. A turn that fails is dropped with its text and attachments.
void ChatSession::add_user_message(const std::string& text) {
  std::stable_partition(pending_media_.begin(), pending_media_.end(),
                        [](const MediaAttachment& attachment) { return attachment.kind == MediaInput::Kind::image; });
  const size_t attached = pending_media_.size();
  if (attached == 0) {
    messages_.push_back({{"role", "user"}, {"content", text}});
  } else {
    Json parts = Json::array();
    for (const MediaAttachment& attachment : pending_media_) {
      parts.push_back(media_content_part(attachment.kind, attachment.name));
    }
    parts.push_back({{"type", "text"}, {"text", text}});
    messages_.push_back({{"role", "user"}, {"content", std::move(parts)}});
    std::move(pending_media_.begin(), pending_media_.end(), std::back_inserter(media_));
    pending_media_.clear();
  }

  if (!generate_reply()) {
    messages_.erase(messages_.size() - 1);
    media_.resize(media_.size() - attached);
  }
}

bool ChatSession::waiting_for_results() const {
  return std::any_of(pending_calls_.begin(), pending_calls_.end(), [](const PendingCall& call) { return !call.answered; });
}

std::string ChatSession::pending_names() const {
  std::string names;
  for (const PendingCall& call : pending_calls_) {
    if (call.answered) continue;
    if (!names.empty()) names += ", ";
    names += call.name;
  }
  return names;
}

void ChatSession::report_error(const std::string& message) { streams_.errors << "error: " << message << std::endl; }

void ChatSession::reset() {
  messages_ = Json::array();
  pending_calls_.clear();
  media_.clear();
  pending_media_.clear();
}

// Appends a tool message for the first unanswered call of NAME and, once every call has its
// result, generates the model's next reply.
void ChatSession::add_tool_result(const std::string& argument) {
  if (!waiting_for_results()) {
    report_error("/tool-result: no tool call is waiting for a result");
    return;
  }
  const size_t space = argument.find(' ');
  const std::string name = argument.substr(0, space);
  const std::string result_text = space == std::string::npos ? "" : argument.substr(space + 1);
  const auto call = std::find_if(pending_calls_.begin(), pending_calls_.end(),
                                 [&](const PendingCall& pending) { return !pending.answered && pending.name == name; });
  if (name.empty() || call == pending_calls_.end()) {
    report_error("/tool-result: no pending call named \"" + name + "\"; waiting for " + pending_names());
    return;
  }

  // A JSON object stays structured, so the template can render its fields; anything else is text.
  Json content = result_text;
  const Json parsed = Json::parse(result_text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && !json_deeper_than(parsed, kMaxJsonDepth)) content = parsed;
  messages_.push_back({{"role", "tool"}, {"tool_call_id", call->id}, {"name", call->name}, {"content", content}});
  call->answered = true;

  if (waiting_for_results()) {
    MXG_LOG_DEBUG("waiting for results of %s", pending_names().c_str());
    return;
  }
  pending_calls_.clear();
  // A failed reply leaves the tool messages in the history; /reset clears them.
  generate_reply();
}

void ChatSession::write_events(const std::vector<Gemma4Event>& events, size_t begin) {
  for (size_t i = begin; i < events.size(); ++i) {
    const Gemma4Event& event = events[i];
    if (event.kind == Gemma4Event::Kind::kReasoning) {
      if (streams_.dim_reasoning) streams_.reasoning << "\x1b[2m";
      streams_.reasoning << event.text;
      if (streams_.dim_reasoning) streams_.reasoning << "\x1b[0m";
      streams_.reasoning.flush();
      wrote_reasoning_ = true;
    } else if (event.kind == Gemma4Event::Kind::kContent) {
      streams_.out << event.text;
      wrote_content_ = true;
    } else {
      if (wrote_content_) streams_.out << '\n';
      const Json line = {{"tool_call", {{"name", event.tool_call.name}, {"arguments", arguments_object(event.tool_call.arguments)}}}};
      streams_.out << line.dump() << '\n';
      wrote_content_ = false;
    }
  }
  streams_.out.flush();
}

// Renders the whole conversation and generates the assistant's reply, streaming it out. Each
// turn prefills the whole prompt from an empty cache, which is simple but re-reads the history
// every turn; the attachments' soft tokens are kept, so no tower runs again. Returns false, with
// the history unchanged, when the turn cannot run.
bool ChatSession::generate_reply() {
  Json messages = Json::array();
  if (!system_.empty()) messages.push_back({{"role", "system"}, {"content", system_}});
  for (const Json& message : messages_) messages.push_back(message);
  Json request = {{"messages", std::move(messages)}, {"add_generation_prompt", true}, {"enable_thinking", enable_thinking_}};
  if (!tools_.empty()) request["tools"] = tools_;
  for (const auto& [key, value] : template_kwargs_.items()) request[key] = value;

  MediaPrompt prompt;
  try {
    last_prompt_ = render_chat_template(template_, chat_template_context(request, "chat", bundle_.tokenizer_config()));
    std::vector<int32_t> tokens = tokenizer_.encode(last_prompt_, /*add_bos=*/false, /*parse_special=*/true);
    // Without attachments the tokens go as they are: a typed <|image|> is then not checked
    // against a count of images.
    if (media_.empty()) {
      prompt.tokens = std::move(tokens);
    } else {
      prompt = splice_attachments(tokens, media_, bundle_.config());
    }
  } catch (const std::exception& error) {
    report_error(error.what());
    return false;
  }
  MXG_LOG_DEBUG("prompt (%zu tokens): %s", prompt.tokens.size(), last_prompt_.c_str());

  Gemma4OutputParser parser;
  std::vector<Gemma4Event> events;
  wrote_content_ = false;
  wrote_reasoning_ = false;
  GenerationResult result;
  try {
    result = generate_(prompt, turns_, [&](const std::string& piece) {
      const size_t begin = events.size();
      parser.push(piece, events);
      write_events(events, begin);
      // <turn|> or <|tool_response> ends the reply; the parser ignores anything after it.
      return parser.output().stop == Gemma4Stop::kNone;
    });
  } catch (const std::exception& error) {
    report_error(error.what());
    return false;
  }
  const size_t begin = events.size();
  const Gemma4Output& output = parser.finish(events);
  write_events(events, begin);
  if (wrote_content_) streams_.out << '\n';
  streams_.out.flush();
  if (wrote_reasoning_ && !output.reasoning.empty() && output.reasoning.back() != '\n') streams_.reasoning << '\n';
  for (const std::string& warning : output.warnings) MXG_LOG_WARN("model output: %s", warning.c_str());

  record_reply(output);
  if (on_reply_) on_reply_(result);
  return true;
}

// Appends the assistant message in OpenAI form. The call arguments are stored as a JSON object,
// not a string, because chat templates (Gemma 4's included) iterate over them.
void ChatSession::record_reply(const Gemma4Output& output) {
  Json message = {{"role", "assistant"}, {"content", output.content}};
  if (!output.tool_calls.empty()) {
    Json calls = Json::array();
    for (size_t i = 0; i < output.tool_calls.size(); ++i) {
      const Gemma4ToolCall& call = output.tool_calls[i];
      const std::string id = "call_" + std::to_string(turns_) + "_" + std::to_string(i);
      calls.push_back({{"id", id}, {"type", "function"}, {"function", {{"name", call.name}, {"arguments", arguments_object(call.arguments)}}}});
      pending_calls_.push_back({id, call.name, false});
    }
    message["tool_calls"] = std::move(calls);
  }
  messages_.push_back(std::move(message));
  ++turns_;
}

}  // namespace mxgemma
