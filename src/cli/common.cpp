#include "cli/common.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "util/log.h"

#ifndef MXGEMMA_DEFAULT_BUNDLE
#define MXGEMMA_DEFAULT_BUNDLE "models/default"
#endif

namespace mxgemma::cli {

std::string default_bundle_dir() {
  if (const char* env = std::getenv("MXGEMMA_MODEL"); env != nullptr && *env != '\0') return env;
  return MXGEMMA_DEFAULT_BUNDLE;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 4) {
    bytes /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.2f %s", bytes, units[unit]);
  return text;
}

LoadedModel load_model(const ModelOptions& options, bool with_model) {
  const std::string dir = options.bundle_dir.empty() ? default_bundle_dir() : options.bundle_dir;
  if (options.bundle_dir.empty() && !std::filesystem::exists(dir)) {
    throw std::runtime_error("no bundle given and the default bundle " + dir +
                             " does not exist: pass -m BUNDLE or run scripts/demo.sh once to create it");
  }
  const auto start = std::chrono::steady_clock::now();
  LoadedModel loaded;
  loaded.bundle = std::make_unique<Bundle>(Bundle::open(dir));
  const auto tokenizer_start = std::chrono::steady_clock::now();
  loaded.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_file(loaded.bundle->tokenizer_json_path()));
  loaded.tokenizer_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - tokenizer_start).count();
  if (with_model) {
    loaded.pool = std::make_unique<ThreadPool>(options.threads);
    loaded.model = std::make_unique<Gemma4TextModel>(*loaded.bundle, *loaded.pool);
  }
  loaded.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const Bundle& bundle = *loaded.bundle;
  MXG_LOG_INFO("loaded %s: %s, %s layout, %zu shards, %s, %d quantized tensors, tokenizer of %d tokens, in %.2f s "
               "(tokenizer %.2f s)",
               dir.c_str(), bundle.config().text.model_type.c_str(), layout_name(bundle.layout()),
               bundle.tensors().num_shards(), format_bytes(double(bundle.tensors().total_bytes())).c_str(),
               bundle.num_quantized_tensors(), loaded.tokenizer->vocab_size(), loaded.load_seconds,
               loaded.tokenizer_seconds);
  return loaded;
}

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

std::string format_prompt(const Bundle& bundle, const std::string& system_text, const std::string& user_text,
                          bool raw, bool enable_thinking, const ChatTemplateChoice& choice) {
  if (raw) return user_text;
  SelectedChatTemplate chat_template;
  try {
    chat_template = select_chat_template(bundle, choice);
  } catch (const std::runtime_error& error) {
    throw std::runtime_error(std::string(error.what()) + "; pass --raw to send the prompt as it is");
  }
  // ordered_json keeps insertion order, as the Python dicts a template expects do.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!system_text.empty()) messages.push_back({{"role", "system"}, {"content", system_text}});
  messages.push_back({{"role", "user"}, {"content", user_text}});
  nlohmann::ordered_json request = {
      {"messages", messages},
      {"add_generation_prompt", true},
      {"enable_thinking", enable_thinking},
  };
  return render_chat_template(chat_template, chat_template_context(request, "prompt", bundle.tokenizer_config()));
}

void add_sampling_options(CLI::App& command, SamplingFlags& flags, const std::string& seed_help) {
  command.add_option("--temperature", flags.temperature, "Sampling temperature; 0 is greedy (default: generation_config.json)");
  command.add_option("--top-k", flags.top_k, "Keep the K most likely tokens; 0 is off");
  command.add_option("--top-p", flags.top_p, "Keep the smallest set of tokens with this much probability; 1 is off");
  command.add_option("--min-p", flags.min_p, "Drop tokens less likely than min-p times the most likely; 0 is off");
  command.add_option("--repeat-penalty", flags.repetition_penalty, "Penalty for tokens seen recently; 1 is off");
  command.add_option("--repeat-last-n", flags.repeat_last_n, "How many recent tokens the penalty looks at")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  command.add_option("--seed", flags.seed, seed_help);
}

SamplingParams resolve_sampling(const SamplingFlags& flags, const GenerationConfig& defaults, uint64_t seed_offset) {
  SamplingParams params;
  if (defaults.temperature) params.temperature = float(*defaults.temperature);
  // Hugging Face's generate ignores the temperature and decodes greedily when do_sample is false.
  if (!defaults.do_sample) params.temperature = 0.0f;
  if (defaults.top_k) params.top_k = *defaults.top_k;
  if (defaults.top_p) params.top_p = float(*defaults.top_p);
  if (defaults.min_p) params.min_p = float(*defaults.min_p);
  if (defaults.repetition_penalty) params.repetition_penalty = float(*defaults.repetition_penalty);
  if (flags.temperature) params.temperature = *flags.temperature;
  if (flags.top_k) params.top_k = *flags.top_k;
  if (flags.top_p) params.top_p = *flags.top_p;
  if (flags.min_p) params.min_p = *flags.min_p;
  if (flags.repetition_penalty) params.repetition_penalty = *flags.repetition_penalty;
  params.repeat_last_n = flags.repeat_last_n;
  params.seed = flags.seed ? *flags.seed + seed_offset
                           : uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count());
  validate(params);
  return params;
}

void print_generation_stats(const GenerationResult& result) {
  const double prefill_rate = double(result.prompt_tokens) / std::max(result.prefill_seconds, 1e-9);
  const size_t decoded = result.tokens.size();
  // The first token comes from the prefill, so a decode rate needs at least two tokens.
  char decode_rate[32] = "-";
  if (decoded > 1) {
    std::snprintf(decode_rate, sizeof decode_rate, "%.1f", double(decoded - 1) / std::max(result.decode_seconds, 1e-9));
  }
  std::fprintf(stderr,
               "prompt %lld tokens, prefill %.1f tok/s, decode %s tok/s over %zu tokens, time to first token %.3f s, "
               "peak memory %s, finish %s\n",
               static_cast<long long>(result.prompt_tokens), prefill_rate, decode_rate, decoded,
               result.time_to_first_token, format_bytes(double(peak_rss_bytes())).c_str(),
               finish_reason_name(result.finish_reason));
}

int64_t peak_rss_bytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return int64_t(usage.ru_maxrss) * 1024;
}

}  // namespace mxgemma::cli
