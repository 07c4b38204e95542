// mxgemma chat: a multi-turn conversation read from stdin, with optional tool calls.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/generator.h"
#include "text/gemma4_output.h"
#include "util/log.h"

namespace mxgemma::cli {

void add_chat_command(CLI::App& app, CommandAction& action);

namespace {

using Json = nlohmann::ordered_json;

struct ChatOptions {
  ModelOptions model;
  std::string system;
  bool think = false;
  std::string tools_path;
  int max_tokens = 1024;
  SamplingFlags sampling;
  ChatTemplateChoice chat_template;
  int64_t context_size = 4096;
};

// A tool call of the last assistant message that has no tool message yet.
struct PendingCall {
  std::string id;
  std::string name;
  bool answered = false;
};

struct Conversation {
  std::string system;
  Json messages = Json::array();  // user, assistant and tool messages, the system message excluded
  std::vector<PendingCall> pending_calls;
  int turns = 0;  // generations so far, used to make tool call ids unique

  void reset() {
    messages = Json::array();
    pending_calls.clear();
  }
  bool waiting_for_results() const {
    return std::any_of(pending_calls.begin(), pending_calls.end(), [](const PendingCall& call) { return !call.answered; });
  }
};

[[noreturn]] void fail_tools(const std::string& path, const std::string& field, const std::string& problem) {
  throw std::invalid_argument(path + ": " + field + ": " + problem);
}

// Reads an OpenAI tools array. Throws std::invalid_argument "<path>: <field>: <problem>" when the
// file is missing, is not JSON, or an entry is not {"type": "function", "function": {name, ...}}.
Json read_tools(const std::string& path) {
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

// Builds the apply_chat_template request for the next generation: the system message, the
// history, the tools and the generation prompt.
Json chat_request(const Conversation& conversation, const Json& tools, bool enable_thinking) {
  Json messages = Json::array();
  if (!conversation.system.empty()) messages.push_back({{"role", "system"}, {"content", conversation.system}});
  for (const Json& message : conversation.messages) messages.push_back(message);

  Json request = {{"messages", std::move(messages)}, {"add_generation_prompt", true}, {"enable_thinking", enable_thinking}};
  if (!tools.empty()) request["tools"] = tools;
  return request;
}

class ChatSession {
 public:
  explicit ChatSession(const ChatOptions& options)
      : options_(options),
        tools_(options.tools_path.empty() ? Json::array() : read_tools(options.tools_path)),
        loaded_(load_model(options.model)),
        template_(select_chat_template(*loaded_.bundle, options.chat_template)),
        generator_(*loaded_.model, *loaded_.tokenizer),
        stderr_is_tty_(::isatty(STDERR_FILENO) != 0) {
    conversation_.system = options.system;
    context_size_ = std::min<int64_t>(options.context_size, loaded_.bundle->text_config().max_position_embeddings);
  }

  // Reads lines until /exit or end of input.
  int run() {
    const bool interactive = ::isatty(STDIN_FILENO) != 0;
    std::string line;
    while (true) {
      if (interactive) {
        std::fputs("> ", stderr);
        std::fflush(stderr);
      }
      if (!std::getline(std::cin, line)) {
        if (interactive) std::fputc('\n', stderr);
        break;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (line[0] == '/') {
        if (!handle_command(line)) break;
        continue;
      }
      if (conversation_.waiting_for_results()) {
        report_error("the model is waiting for tool results (" + pending_names() +
                     "); answer each with /tool-result NAME RESULT, or /reset");
        continue;
      }
      conversation_.messages.push_back({{"role", "user"}, {"content", line}});
      if (!generate_reply()) conversation_.messages.erase(conversation_.messages.size() - 1);
    }
    return 0;
  }

 private:
  static void report_error(const std::string& message) { std::fprintf(stderr, "error: %s\n", message.c_str()); }

  std::string pending_names() const {
    std::string names;
    for (const PendingCall& call : conversation_.pending_calls) {
      if (call.answered) continue;
      if (!names.empty()) names += ", ";
      names += call.name;
    }
    return names;
  }

  // Runs one chat command; returns false when the session should end.
  bool handle_command(const std::string& line) {
    const size_t space = line.find(' ');
    const std::string command = line.substr(0, space);
    const std::string argument = space == std::string::npos ? "" : line.substr(space + 1);
    if (command == "/exit") return false;
    if (command == "/reset") {
      conversation_.reset();
      MXG_LOG_DEBUG("history cleared; the system message is kept");
    } else if (command == "/system") {
      conversation_.system = argument;
      conversation_.reset();
      MXG_LOG_DEBUG("system message set to \"%s\"; history cleared", argument.c_str());
    } else if (command == "/tool-result") {
      add_tool_result(argument);
    } else {
      report_error("unknown command " + command + "; the commands are /reset, /system TEXT, /tool-result NAME RESULT, /exit");
    }
    return true;
  }

  // Appends a tool message for the first unanswered call of NAME and, once every call has its
  // result, generates the model's next reply.
  void add_tool_result(const std::string& argument) {
    if (!conversation_.waiting_for_results()) {
      report_error("/tool-result: no tool call is waiting for a result");
      return;
    }
    const size_t space = argument.find(' ');
    const std::string name = argument.substr(0, space);
    const std::string result_text = space == std::string::npos ? "" : argument.substr(space + 1);
    const auto call = std::find_if(conversation_.pending_calls.begin(), conversation_.pending_calls.end(),
                                   [&](const PendingCall& pending) { return !pending.answered && pending.name == name; });
    if (name.empty() || call == conversation_.pending_calls.end()) {
      report_error("/tool-result: no pending call named \"" + name + "\"; waiting for " + pending_names());
      return;
    }

    // A JSON object stays structured, so the template can render its fields; anything else is text.
    Json content = result_text;
    const Json parsed = Json::parse(result_text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) content = parsed;
    conversation_.messages.push_back({{"role", "tool"}, {"tool_call_id", call->id}, {"name", call->name}, {"content", content}});
    call->answered = true;

    if (conversation_.waiting_for_results()) {
      MXG_LOG_DEBUG("waiting for results of %s", pending_names().c_str());
      return;
    }
    conversation_.pending_calls.clear();
    // NOTE: when this generation fails, the tool messages stay in the history, so the user must /reset.
    generate_reply();
  }

  void write_reasoning(const std::string& text) const {
    if (stderr_is_tty_) std::fputs("\x1b[2m", stderr);
    std::fwrite(text.data(), 1, text.size(), stderr);
    if (stderr_is_tty_) std::fputs("\x1b[0m", stderr);
    std::fflush(stderr);
  }

  void write_events(const std::vector<Gemma4Event>& events, size_t begin) {
    for (size_t i = begin; i < events.size(); ++i) {
      const Gemma4Event& event = events[i];
      if (event.kind == Gemma4Event::Kind::kReasoning) {
        write_reasoning(event.text);
        wrote_reasoning_ = true;
      } else if (event.kind == Gemma4Event::Kind::kContent) {
        std::fwrite(event.text.data(), 1, event.text.size(), stdout);
        wrote_content_ = true;
      } else {
        if (wrote_content_) std::fputc('\n', stdout);
        Json arguments = Json::parse(event.tool_call.arguments, nullptr, /*allow_exceptions=*/false);
        if (!arguments.is_object()) arguments = Json::object();
        const Json line = {{"tool_call", {{"name", event.tool_call.name}, {"arguments", arguments}}}};
        std::fprintf(stdout, "%s\n", line.dump().c_str());
        wrote_content_ = false;
      }
    }
    std::fflush(stdout);
  }

  // Renders the whole conversation and generates the assistant's reply, streaming it out. Each
  // turn prefills the whole prompt from an empty cache, which is simple but re-reads the history
  // every turn. Returns false, with the history unchanged, when the turn cannot run.
  bool generate_reply() {
    std::string prompt_text;
    std::vector<int32_t> prompt;
    try {
      const Json context = chat_template_context(chat_request(conversation_, tools_, options_.think), "chat",
                                                 loaded_.bundle->tokenizer_config());
      prompt_text = render_chat_template(template_, context);
      prompt = loaded_.tokenizer->encode(prompt_text, /*add_bos=*/false, /*parse_special=*/true);
    } catch (const std::exception& error) {
      report_error(error.what());
      return false;
    }
    MXG_LOG_DEBUG("prompt (%zu tokens): %s", prompt.size(), prompt_text.c_str());
    // The generator needs room for at least one new token after the prompt.
    if (int64_t(prompt.size()) >= context_size_) {
      report_error("the conversation is " + std::to_string(prompt.size()) + " tokens and no longer fits the context of " +
                   std::to_string(context_size_) + " tokens; /reset to start over, or restart with a larger --ctx-size");
      return false;
    }

    GenerationParams params;
    params.max_tokens = options_.max_tokens;
    // Each reply samples with the seed plus its turn number, so a seeded session is repeatable
    // without every reply using the same seed.
    params.sampling = resolve_sampling(options_.sampling, loaded_.bundle->generation_config(), uint64_t(conversation_.turns));
    params.stop_token_ids = loaded_.bundle->generation_config().eos_token_ids;

    Gemma4OutputParser parser;
    std::vector<Gemma4Event> events;
    wrote_content_ = false;
    wrote_reasoning_ = false;
    const GenerationResult result = generator_.generate(prompt, params, context_size_, [&](const std::string& piece) {
      const size_t begin = events.size();
      parser.push(piece, events);
      write_events(events, begin);
      // <turn|> or <|tool_response> ends the reply; the parser ignores anything after it.
      return parser.output().stop == Gemma4Stop::kNone;
    });
    const size_t begin = events.size();
    const Gemma4Output& output = parser.finish(events);
    write_events(events, begin);
    if (wrote_content_) std::fputc('\n', stdout);
    std::fflush(stdout);
    if (wrote_reasoning_ && !output.reasoning.empty() && output.reasoning.back() != '\n') std::fputc('\n', stderr);
    for (const std::string& warning : output.warnings) MXG_LOG_WARN("model output: %s", warning.c_str());

    record_reply(output);
    print_generation_stats(result);
    return true;
  }

  // Appends the assistant message in OpenAI form. The call arguments are stored as a JSON object,
  // not a string, because chat templates (Gemma 4's included) iterate over them.
  // NOTE: the random-weight test bundle never emits a tool call, so no automated test covers the
  // tool call path or the /tool-result continuation.
  void record_reply(const Gemma4Output& output) {
    Json message = {{"role", "assistant"}, {"content", output.content}};
    if (!output.tool_calls.empty()) {
      Json calls = Json::array();
      for (size_t i = 0; i < output.tool_calls.size(); ++i) {
        const Gemma4ToolCall& call = output.tool_calls[i];
        const std::string id = "call_" + std::to_string(conversation_.turns) + "_" + std::to_string(i);
        Json arguments = Json::parse(call.arguments, nullptr, /*allow_exceptions=*/false);
        if (!arguments.is_object()) arguments = Json::object();
        calls.push_back({{"id", id}, {"type", "function"}, {"function", {{"name", call.name}, {"arguments", arguments}}}});
        conversation_.pending_calls.push_back({id, call.name, false});
      }
      message["tool_calls"] = std::move(calls);
    }
    conversation_.messages.push_back(std::move(message));
    ++conversation_.turns;
  }

  const ChatOptions& options_;
  Json tools_;
  LoadedModel loaded_;
  SelectedChatTemplate template_;
  Generator generator_;
  bool stderr_is_tty_;
  int64_t context_size_ = 0;
  Conversation conversation_;
  bool wrote_content_ = false;
  bool wrote_reasoning_ = false;
};

int chat(const ChatOptions& options) {
  ChatSession session(options);
  return session.run();
}

}  // namespace

void add_chat_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<ChatOptions>();

  CLI::App* command = app.add_subcommand(
      "chat",
      "Chat with the model, one user message per stdin line. Commands: /reset clears the history and keeps the "
      "system message; /system TEXT sets the system message and clears the history; /tool-result NAME RESULT "
      "answers the model's pending call NAME (RESULT is a JSON object or text), and the model continues by itself "
      "once every call has a result; /exit or end of input quits. Content goes to stdout, thinking to stderr, and "
      "each tool call to stdout as a {\"tool_call\": {\"name\", \"arguments\"}} JSON line");
  command->add_option("-m,--model", options->model.bundle_dir, "Bundle folder (default: $MXGEMMA_MODEL or models/default)");

  command->add_option("--system", options->system, "The system message of the conversation");
  command->add_flag("--think", options->think, "Turn the model's thinking on (enable_thinking in the template); it goes to stderr");
  command->add_option("--tools", options->tools_path,
                      "JSON file with an OpenAI tools array ({\"type\": \"function\", \"function\": {name, description, "
                      "parameters}}), passed to the template as tools");

  command->add_option("-n,--max-tokens", options->max_tokens, "Maximum tokens to generate per reply")->check(CLI::Range(0, 1 << 24))->capture_default_str();
  add_sampling_options(*command, options->sampling, "Random seed; reply N of the session samples with seed + N");

  CLI::Option* template_file = command->add_option("--chat-template", options->chat_template.file,
                                                   "Format the conversation with this Jinja template file instead of the bundle's");
  command->add_option("--chat-template-name", options->chat_template.name,
                      "Format the conversation with the bundle's template of this name (tokenizer_config.json list)")
      ->excludes(template_file);
  command->add_option("-c,--ctx-size", options->context_size, "Context size in tokens, for the whole conversation")->check(CLI::Range(int64_t(1), int64_t(1) << 24))->capture_default_str();
  command->add_option("-t,--threads", options->model.threads, "Worker threads; 0 uses every core")->check(CLI::Range(0, 1024))->capture_default_str();

  command->callback([options, &action] { action = [options] { return chat(*options); }; });
}

}  // namespace mxgemma::cli
