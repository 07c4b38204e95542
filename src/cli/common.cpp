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

#include "engine/media_attachment.h"
#include "util/json_depth.h"
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

std::string format_prompt(const Bundle& bundle, const std::string& system_text, const std::string& user_text,
                          bool raw, bool enable_thinking, const ChatTemplateChoice& choice,
                          const nlohmann::ordered_json& template_kwargs, std::span<const MediaInput> media) {
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
  if (media.empty()) {
    messages.push_back({{"role", "user"}, {"content", user_text}});
  } else {
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    for (const MediaInput& input : media) {
      parts.push_back(media_content_part(input.kind, input.name));
    }
    parts.push_back({{"type", "text"}, {"text", user_text}});
    messages.push_back({{"role", "user"}, {"content", std::move(parts)}});
  }
  nlohmann::ordered_json request = {
      {"messages", messages},
      {"add_generation_prompt", true},
      {"enable_thinking", enable_thinking},
  };
  for (const auto& [key, value] : template_kwargs.items()) request[key] = value;
  return render_chat_template(chat_template, chat_template_context(request, "prompt", bundle.tokenizer_config()));
}

nlohmann::ordered_json parse_template_kwargs(const std::string& text) {
  if (text.empty()) return nlohmann::ordered_json::object();
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (kwargs.is_object() && json_deeper_than(kwargs, kMaxJsonDepth)) {
    throw std::invalid_argument("--chat-template-kwargs: nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  }
  if (!kwargs.is_object()) {
    throw std::invalid_argument("--chat-template-kwargs: expected a JSON object such as '{\"tool_choice\": \"required\"}', got: " + text);
  }
  for (const char* reserved : {"messages", "tools", "add_generation_prompt"}) {
    if (kwargs.contains(reserved)) {
      throw std::invalid_argument(std::string("--chat-template-kwargs: \"") + reserved +
                                  "\" is set by the command itself and cannot be passed here");
    }
  }
  return kwargs;
}

void add_template_kwargs_option(CLI::App& command, std::string& text) {
  command.add_option("--chat-template-kwargs", text,
                     "Extra chat template keywords as a JSON object, e.g. '{\"tool_choice\": \"required\"}'; "
                     "enable_thinking here replaces --think");
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
  SamplingParams params = sampling_defaults(defaults);
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
