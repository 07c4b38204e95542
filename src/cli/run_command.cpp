// mxgemma run: generate a reply to one prompt, streamed to stdout.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/generator.h"
#include "util/log.h"

namespace mxgemma::cli {
namespace {

struct RunOptions {
  ModelOptions model;
  std::string prompt;
  std::string system;
  int max_tokens = 256;
  std::optional<float> temperature;
  std::optional<int> top_k;
  std::optional<float> top_p;
  std::optional<float> min_p;
  std::optional<float> repetition_penalty;
  int repeat_last_n = 64;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool raw = false;
  bool think = false;
  ChatTemplateChoice chat_template;
  int64_t context_size = 4096;
};

// Flags win; then generation_config.json; then the sampler's own defaults.
SamplingParams sampling_from(const RunOptions& options, const GenerationConfig& defaults) {
  SamplingParams params;
  if (defaults.temperature) params.temperature = float(*defaults.temperature);
  // Hugging Face's generate ignores the temperature and decodes greedily when do_sample is false.
  if (!defaults.do_sample) params.temperature = 0.0f;
  if (defaults.top_k) params.top_k = *defaults.top_k;
  if (defaults.top_p) params.top_p = float(*defaults.top_p);
  if (defaults.min_p) params.min_p = float(*defaults.min_p);
  if (defaults.repetition_penalty) params.repetition_penalty = float(*defaults.repetition_penalty);
  if (options.temperature) params.temperature = *options.temperature;
  if (options.top_k) params.top_k = *options.top_k;
  if (options.top_p) params.top_p = *options.top_p;
  if (options.min_p) params.min_p = *options.min_p;
  if (options.repetition_penalty) params.repetition_penalty = *options.repetition_penalty;
  params.repeat_last_n = options.repeat_last_n;
  params.seed = options.seed ? *options.seed
                             : uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count());
  validate(params);
  return params;
}

int run(const RunOptions& options) {
  if (options.prompt.empty()) throw std::invalid_argument("invalid --prompt: the prompt is empty");
  for (const std::string& stop : options.stop) {
    if (stop.empty()) throw std::invalid_argument("invalid --stop: a stop string must not be empty");
  }
  LoadedModel loaded = load_model(options.model);
  const Bundle& bundle = *loaded.bundle;
  const std::string prompt_text = format_prompt(bundle, options.system, options.prompt, options.raw, options.think,
                                                options.chat_template);
  // The chat template writes BOS itself; a raw prompt gets one unless it already starts with it.
  const bool add_bos = options.raw && prompt_text.rfind(bundle.tokenizer_config().bos_token, 0) != 0;
  const std::vector<int32_t> prompt = loaded.tokenizer->encode(prompt_text, add_bos, /*parse_special=*/true);
  MXG_LOG_DEBUG("prompt (%zu tokens): %s", prompt.size(), prompt_text.c_str());

  GenerationParams params;
  params.max_tokens = options.max_tokens;
  params.sampling = sampling_from(options, bundle.generation_config());
  params.stop_token_ids = bundle.generation_config().eos_token_ids;
  params.stop_strings = options.stop;
  MXG_LOG_DEBUG("sampling: temperature %.3g, top_k %d, top_p %.3g, min_p %.3g, repetition_penalty %.3g, seed %llu",
                params.sampling.temperature, params.sampling.top_k, params.sampling.top_p, params.sampling.min_p,
                params.sampling.repetition_penalty, static_cast<unsigned long long>(params.sampling.seed));

  const int64_t context_size = std::min<int64_t>(options.context_size, bundle.text_config().max_position_embeddings);
  Generator generator(*loaded.model, *loaded.tokenizer);
  const GenerationResult result = generator.generate(prompt, params, context_size, [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);

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
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* command = app.add_subcommand("run", "Generate a reply to a prompt, streamed to stdout");
  command->add_option("-m,--model", options->model.bundle_dir, "Bundle folder (default: $MXGEMMA_MODEL or models/default)");
  command->add_option("-p,--prompt", options->prompt, "The user message (or the whole prompt with --raw)")->required();
  command->add_option("--system", options->system, "A system message before the prompt");
  command->add_option("-n,--max-tokens", options->max_tokens, "Most tokens to generate")->check(CLI::Range(0, 1 << 24))->capture_default_str();
  command->add_option("--temperature", options->temperature, "Sampling temperature; 0 is greedy (default: generation_config.json)");
  command->add_option("--top-k", options->top_k, "Keep the K most likely tokens; 0 is off");
  command->add_option("--top-p", options->top_p, "Keep the smallest set of tokens with this much probability; 1 is off");
  command->add_option("--min-p", options->min_p, "Drop tokens less likely than min-p times the most likely; 0 is off");
  command->add_option("--repeat-penalty", options->repetition_penalty, "Penalty for tokens seen recently; 1 is off");
  command->add_option("--repeat-last-n", options->repeat_last_n, "How many recent tokens the penalty looks at")->check(CLI::Range(0, 1 << 24))->capture_default_str();
  command->add_option("--seed", options->seed, "Random seed, for repeatable sampling");
  command->add_option("--stop", options->stop, "Stop when this text appears (repeatable)");
  command->add_flag("--raw", options->raw, "Send the prompt as it is, without the chat template");
  CLI::Option* template_file = command->add_option("--chat-template", options->chat_template.file,
                                                   "Format the prompt with this Jinja template file instead of the bundle's");
  command->add_option("--chat-template-name", options->chat_template.name,
                      "Format the prompt with the bundle's template of this name (tokenizer_config.json list)")
      ->excludes(template_file);
  command->add_flag("--think", options->think, "Turn the model's thinking on (enable_thinking in the template)");
  command->add_option("-c,--ctx-size", options->context_size, "Context size in tokens")->check(CLI::Range(int64_t(1), int64_t(1) << 24))->capture_default_str();
  command->add_option("-t,--threads", options->model.threads, "Worker threads; 0 uses every core")->check(CLI::Range(0, 1024))->capture_default_str();
  command->callback([options, &action] { action = [options] { return run(*options); }; });
}

}  // namespace mxgemma::cli
