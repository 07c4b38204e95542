// Pieces shared by the subcommands: loading a bundle with its log line, prompt formatting and
// process statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>

#include "bundle/bundle.h"
#include "engine/generator.h"
#include "kernels/thread_pool.h"
#include "engine/chat_prompt.h"
#include "engine/media_prompt.h"
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

// The prompt as the chosen chat template formats one user turn (with an optional system turn)
// and the generation prompt; or `user_text` unchanged when raw. `template_kwargs` adds template
// keywords (e.g. tool_choice) and may replace enable_thinking. With `media`, the user turn is a
// list of content parts: one {"type": "image"} or {"type": "audio"} per input in the given order,
// then the text, and the template writes a placeholder for each input.
std::string format_prompt(const Bundle& bundle, const std::string& system_text, const std::string& user_text,
                          bool raw, bool enable_thinking, const ChatTemplateChoice& choice = {},
                          const nlohmann::ordered_json& template_kwargs = nlohmann::ordered_json::object(),
                          std::span<const MediaInput> media = {});

// Parses the value of --chat-template-kwargs: a JSON object of extra template keywords, as
// apply_chat_template's keyword arguments. Throws std::invalid_argument naming the flag.
nlohmann::ordered_json parse_template_kwargs(const std::string& text);

// Registers --chat-template-kwargs JSON on `command`.
void add_template_kwargs_option(CLI::App& command, std::string& text);

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
