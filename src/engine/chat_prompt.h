// Chat prompts from OpenAI-style requests: choosing the bundle's chat template, building its
// variables as transformers' apply_chat_template does, and mapping "tool" role messages to the
// form the template reads. Shared by the CLI and the server.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "text/chat_template.h"

namespace mxgemma {

// The chat template to render: a template file, else the bundle's template of that name, else
// the bundle's default template.
struct ChatTemplateChoice {
  std::string file;  // --template / --chat-template FILE.jinja
  std::string name;  // --chat-template-name NAME, from a tokenizer_config.json list
};

struct SelectedChatTemplate {
  std::string source;  // the Jinja text
  std::string origin;  // where it came from, for messages: a file path, with the name if any
};

// The chosen template. Throws std::runtime_error naming the file when it cannot be read, the
// known names when `choice.name` is unknown, and the bundle when it has no template.
SelectedChatTemplate select_chat_template(const Bundle& bundle, const ChatTemplateChoice& choice);

// Builds the template variables from a request object as transformers' apply_chat_template takes
// its arguments: "messages", optional "tools" and "documents" (null when absent),
// "add_generation_prompt" (false when absent) and every other key as a template keyword. The
// special tokens of `tokenizer_config` come first, and request keys of the same name replace
// them. As transformers 5 does, message keys whose value is null are dropped, and a message with
// reasoning_content, thinking or reasoning gets the first of them under both "thinking" and
// "reasoning_content". Throws std::invalid_argument "<source_name>: <field>: <problem>" for a
// request of the wrong shape.
nlohmann::ordered_json chat_template_context(const nlohmann::ordered_json& request, const std::string& source_name,
                                             const TokenizerConfig& tokenizer_config);

// Whether the template reads tool results from "tool_responses" on the assistant message (the
// older Gemma 4 form) and does not fold OpenAI-style "tool" role messages into that same form
// itself. Found by rendering one tool call with its result both ways; `base_context` supplies
// the special tokens.
bool template_needs_tool_responses(const ChatTemplate& chat_template, const nlohmann::ordered_json& base_context);

// Moves each run of "tool" role messages into "tool_responses" ({"name", "response"}) of the
// assistant message before it. The name comes from the assistant's tool call whose "id" equals
// the message's "tool_call_id", else from the message's "name". The response is the message's
// content, with a list of content parts joined to their text. Tool messages that follow no
// assistant message are kept as they are.
nlohmann::ordered_json fold_tool_messages(const nlohmann::ordered_json& messages);

// Renders the template over `context`, first folding tool messages when the template needs it.
// Errors of the template (syntax, raise_exception) come back as std::runtime_error prefixed by
// its origin.
std::string render_chat_template(const SelectedChatTemplate& chat_template, nlohmann::ordered_json context);

}  // namespace mxgemma
