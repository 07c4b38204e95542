// Pieces shared by the subcommands: loading a bundle with its log line, prompt formatting and
// process statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>

#include "bundle/bundle.h"
#include "engine/generator.h"
#include "kernels/thread_pool.h"
#include "model/gemma4_text.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace mxgemma::cli {

struct ModelOptions {
  std::string bundle_dir;  // empty: the default bundle
  int threads = 0;         // 0: all hardware threads
};

// The bundle used when -m is not given: $MXGEMMA_MODEL, else the folder the setup script fills.
std::string default_bundle_dir();

struct LoadedModel {
  std::unique_ptr<Bundle> bundle;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Gemma4TextModel> model;
  double load_seconds = 0.0;       // everything below
  double tokenizer_seconds = 0.0;  // reading tokenizer.json alone
};

// Opens the bundle and tokenizer, and the decoder unless with_model is false; logs one line.
LoadedModel load_model(const ModelOptions& options, bool with_model = true);

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

// The prompt as the chosen chat template formats one user turn (with an optional system turn)
// and the generation prompt; or `user_text` unchanged when raw.
std::string format_prompt(const Bundle& bundle, const std::string& system_text, const std::string& user_text,
                          bool raw, bool enable_thinking, const ChatTemplateChoice& choice = {});

// Sampling flags of run and chat; the unset ones fall back to generation_config.json.
struct SamplingFlags {
  std::optional<float> temperature;
  std::optional<int> top_k;
  std::optional<float> top_p;
  std::optional<float> min_p;
  std::optional<float> repetition_penalty;
  int repeat_last_n = 64;
  std::optional<uint64_t> seed;
};

// Registers --temperature, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n and --seed.
void add_sampling_options(CLI::App& command, SamplingFlags& flags, const std::string& seed_help);

// Flags win over generation_config.json, which wins over the sampler's own defaults. The seed is
// flags.seed + seed_offset, or taken from the clock when no seed is given.
SamplingParams resolve_sampling(const SamplingFlags& flags, const GenerationConfig& defaults,
                                uint64_t seed_offset = 0);

// Prints the one-line statistics of a generation to stderr.
void print_generation_stats(const GenerationResult& result);

// Peak resident set size of this process in bytes.
int64_t peak_rss_bytes();

// "1.23 GiB"
std::string format_bytes(double bytes);

}  // namespace mxgemma::cli
