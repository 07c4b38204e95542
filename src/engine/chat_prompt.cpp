#include "engine/chat_prompt.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "util/log.h"

namespace mxgemma {

namespace {

std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::runtime_error(path.string() + ": cannot open the file");
  std::ostringstream text;
  text << stream.rdbuf();
  if (stream.bad()) throw std::runtime_error(path.string() + ": read failed");
  return text.str();
}

std::string join_names(const std::map<std::string, std::string>& named) {
  std::string names;
  for (const auto& [name, source] : named) names += (names.empty() ? "" : ", ") + name;
  return names;
}

[[noreturn]] void fail_request(const std::string& source_name, const std::string& field, const std::string& problem) {
  throw std::invalid_argument(source_name + ": " + field + ": " + problem);
}

// One message as transformers 5 (`_normalize_chat_messages`, `_alias_reasoning_fields`) hands
// it to the template.
nlohmann::ordered_json normalize_message(const nlohmann::ordered_json& message, const std::string& source_name,
                                         const std::string& field) {
  if (!message.is_object()) fail_request(source_name, field, "expected an object, found " + std::string(message.type_name()));
  if (!message.contains("role")) fail_request(source_name, field, "\"role\" is missing");
  if (!message["role"].is_string()) {
    fail_request(source_name, field + ".role", "expected a string, found " + std::string(message["role"].type_name()));
  }
  // Text, a list of typed parts, or (for a tool result) a JSON object the template can render.
  if (message.contains("content")) {
    const nlohmann::ordered_json& content = message["content"];
    const bool tool_object = content.is_object() && message["role"] == "tool";
    if (!(content.is_null() || content.is_string() || content.is_array() || tool_object)) {
      fail_request(source_name, field + ".content",
                   "expected a string or an array of content parts, found " + std::string(content.type_name()));
    }
  }
  nlohmann::ordered_json normalized = nlohmann::ordered_json::object();
  for (const auto& [key, value] : message.items()) {
    if (!value.is_null()) normalized[key] = value;
  }
  nlohmann::ordered_json reasoning;
  for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
    if (normalized.contains(key)) {
      reasoning = normalized[key];
      break;
    }
  }
  if (reasoning.is_null()) return normalized;
  // Python's {"thinking": r, **message, "reasoning_content": r}: "thinking" comes first unless the
  // message has it, and "reasoning_content" keeps its place or goes last.
  nlohmann::ordered_json aliased = nlohmann::ordered_json::object();
  if (!normalized.contains("thinking")) aliased["thinking"] = reasoning;
  for (const auto& [key, value] : normalized.items()) aliased[key] = value;
  aliased["reasoning_content"] = reasoning;
  return aliased;
}

// The text of a tool message's content: a string as it is, a list of parts as their joined text.
nlohmann::ordered_json tool_response_value(const nlohmann::ordered_json& content) {
  if (!content.is_array()) return content;
  std::string text;
  for (const auto& part : content) {
    if (part.is_object() && part.contains("type") && part["type"] == "text" && part.contains("text") &&
        part["text"].is_string()) {
      text += part["text"].get<std::string>();
    }
  }
  return text;
}

// The function name of the tool call `tool_call_id` among the assistant message's tool calls.
std::string tool_call_name(const nlohmann::ordered_json& assistant, const nlohmann::ordered_json& tool_message) {
  if (tool_message.contains("tool_call_id") && assistant.contains("tool_calls") && assistant["tool_calls"].is_array()) {
    for (const auto& call : assistant["tool_calls"]) {
      if (call.is_object() && call.contains("id") && call["id"] == tool_message["tool_call_id"] &&
          call.contains("function") && call["function"].is_object() && call["function"].contains("name") &&
          call["function"]["name"].is_string()) {
        return call["function"]["name"].get<std::string>();
      }
    }
  }
  if (tool_message.contains("name") && tool_message["name"].is_string()) return tool_message["name"].get<std::string>();
  return "";
}

}  // namespace

SelectedChatTemplate select_chat_template(const Bundle& bundle, const ChatTemplateChoice& choice) {
  if (!choice.file.empty()) return {read_whole_file(choice.file), choice.file};
  const TokenizerConfig& tokenizer_config = bundle.tokenizer_config();
  const std::string config_path = (bundle.dir() / "tokenizer_config.json").string();
  if (!choice.name.empty()) {
    const auto& named = tokenizer_config.named_chat_templates;
    const auto found = named.find(choice.name);
    if (found == named.end()) {
      throw std::runtime_error(
          named.empty() ? bundle.dir().string() + ": no chat template named \"" + choice.name +
                              "\": the bundle has a single template, not a named list in tokenizer_config.json"
                        : config_path + ": chat_template: no template named \"" + choice.name +
                              "\"; the names are " + join_names(named));
    }
    return {found->second, config_path + " chat_template \"" + choice.name + "\""};
  }
  if (tokenizer_config.chat_template.empty()) {
    throw std::runtime_error(
        bundle.dir().string() +
        (tokenizer_config.named_chat_templates.empty()
             ? ": the bundle has no chat template (chat_template.jinja or tokenizer_config.json \"chat_template\")"
             : ": tokenizer_config.json chat_template has no entry named \"default\"; pick one of " +
                   join_names(tokenizer_config.named_chat_templates) + " with --chat-template-name"));
  }
  const std::filesystem::path jinja_path = bundle.dir() / "chat_template.jinja";
  return {tokenizer_config.chat_template,
          std::filesystem::exists(jinja_path) ? jinja_path.string() : config_path + " chat_template"};
}

nlohmann::ordered_json chat_template_context(const nlohmann::ordered_json& request, const std::string& source_name,
                                             const TokenizerConfig& tokenizer_config) {
  if (!request.is_object()) {
    throw std::invalid_argument(source_name + ": expected a JSON object, found " + std::string(request.type_name()));
  }
  // apply_chat_template handles these itself instead of passing them to the template.
  for (const char* key : {"continue_final_message", "chat_template", "return_assistant_tokens_mask"}) {
    if (request.contains(key)) {
      fail_request(source_name, key, "not supported; remove it (pick a template with --template or --chat-template-name)");
    }
  }
  if (!request.contains("messages")) fail_request(source_name, "messages", "missing");
  const nlohmann::ordered_json& messages = request["messages"];
  if (!messages.is_array()) fail_request(source_name, "messages", "expected an array, found " + std::string(messages.type_name()));
  if (messages.empty()) fail_request(source_name, "messages", "the conversation is empty");
  for (const char* key : {"tools", "documents"}) {
    if (request.contains(key) && !request[key].is_null() && !request[key].is_array()) {
      fail_request(source_name, key, "expected an array, found " + std::string(request[key].type_name()));
    }
  }
  if (request.contains("add_generation_prompt") && !request["add_generation_prompt"].is_boolean()) {
    fail_request(source_name, "add_generation_prompt",
                 "expected a boolean, found " + std::string(request["add_generation_prompt"].type_name()));
  }

  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  for (const auto& [key, value] : tokenizer_config.special_tokens) context[key] = value;
  // Without tokenizer_config.json, the BOS and EOS defaults of TokenizerConfig are used.
  if (!context.contains("bos_token")) context["bos_token"] = tokenizer_config.bos_token;
  if (!context.contains("eos_token")) context["eos_token"] = tokenizer_config.eos_token;
  for (const auto& [key, value] : request.items()) {
    if (key != "messages") context[key] = value;
  }
  nlohmann::ordered_json normalized = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    normalized.push_back(normalize_message(messages[i], source_name, "messages[" + std::to_string(i) + "]"));
  }
  context["messages"] = std::move(normalized);
  if (!context.contains("tools")) context["tools"] = nullptr;
  if (!context.contains("documents")) context["documents"] = nullptr;
  if (!context.contains("add_generation_prompt")) context["add_generation_prompt"] = false;
  return context;
}

bool template_needs_tool_responses(const ChatTemplate& chat_template, const nlohmann::ordered_json& base_context) {
  const std::string marker = "mxgemma tool probe 7f3a";
  const nlohmann::ordered_json call = {
      {"role", "assistant"},
      {"content", ""},
      {"tool_calls", {{{"id", "probe_call"}, {"type", "function"},
                       {"function", {{"name", "probe_tool"}, {"arguments", nlohmann::ordered_json::object()}}}}}}};
  nlohmann::ordered_json native = nlohmann::ordered_json::array();
  native.push_back({{"role", "user"}, {"content", "probe"}});
  native.push_back(call);
  native.push_back({{"role", "tool"}, {"tool_call_id", "probe_call"}, {"name", "probe_tool"}, {"content", marker}});

  auto render_or_empty = [&](const nlohmann::ordered_json& messages) {
    nlohmann::ordered_json context = base_context;
    context["messages"] = messages;
    context["tools"] = nullptr;
    context["add_generation_prompt"] = false;
    try {
      return chat_template.render(context);
    } catch (const std::exception&) {
      return std::string();  // a template that rejects this form does not read it
    }
  };
  const std::string native_text = render_or_empty(native);
  const std::string folded_text = render_or_empty(fold_tool_messages(native));
  return folded_text.find(marker) != std::string::npos && folded_text != native_text;
}

nlohmann::ordered_json fold_tool_messages(const nlohmann::ordered_json& messages) {
  nlohmann::ordered_json folded = nlohmann::ordered_json::array();
  // Index in `folded` of the assistant message that the current run of tool messages responds to.
  std::optional<size_t> assistant;
  for (const auto& message : messages) {
    const bool is_tool = message.is_object() && message.contains("role") && message["role"] == "tool";
    if (!is_tool) {
      folded.push_back(message);
      const bool is_assistant = message.is_object() && message.contains("role") && message["role"] == "assistant";
      assistant = is_assistant ? std::optional<size_t>(folded.size() - 1) : std::nullopt;
      continue;
    }
    if (!assistant) {
      folded.push_back(message);
      continue;
    }
    nlohmann::ordered_json& target = folded[*assistant];
    nlohmann::ordered_json response = nlohmann::ordered_json::object();
    const std::string name = tool_call_name(target, message);
    if (!name.empty()) response["name"] = name;
    response["response"] = tool_response_value(message.value("content", nlohmann::ordered_json()));
    if (!target.contains("tool_responses") || !target["tool_responses"].is_array()) {
      target["tool_responses"] = nlohmann::ordered_json::array();
    }
    target["tool_responses"].push_back(std::move(response));
  }
  return folded;
}

std::string render_chat_template(const SelectedChatTemplate& chat_template, nlohmann::ordered_json context) {
  try {
    const ChatTemplate compiled(chat_template.source);
    if (context.contains("messages") && template_needs_tool_responses(compiled, context)) {
      MXG_LOG_DEBUG("%s reads tool results from tool_responses; folding tool messages into them",
                    chat_template.origin.c_str());
      context["messages"] = fold_tool_messages(context["messages"]);
    }
    return compiled.render(context);
  } catch (const std::exception& error) {
    throw std::runtime_error(chat_template.origin + ": " + error.what());
  }
}

}  // namespace mxgemma
