// mxgemma run: generate a reply to one prompt, streamed to stdout.
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
  SamplingFlags sampling;
  std::vector<std::string> stop;
  bool raw = false;
  bool think = false;
  ChatTemplateChoice chat_template;
  std::string template_kwargs;
  int64_t context_size = 4096;
};

int run(const RunOptions& options) {
  if (options.prompt.empty()) throw std::invalid_argument("invalid --prompt: the prompt is empty");
  for (const std::string& stop : options.stop) {
    if (stop.empty()) throw std::invalid_argument("invalid --stop: a stop string must not be empty");
  }
  const nlohmann::ordered_json template_kwargs = parse_template_kwargs(options.template_kwargs);
  LoadedModel loaded = load_model(options.model);
  const Bundle& bundle = *loaded.bundle;
  const std::string prompt_text = format_prompt(bundle, options.system, options.prompt, options.raw, options.think,
                                                options.chat_template, template_kwargs);
  // The chat template writes BOS itself; a raw prompt gets one unless it already starts with it.
  const bool add_bos = options.raw && prompt_text.rfind(bundle.tokenizer_config().bos_token, 0) != 0;
  const std::vector<int32_t> prompt = loaded.tokenizer->encode(prompt_text, add_bos, /*parse_special=*/true);
  MXG_LOG_DEBUG("prompt (%zu tokens): %s", prompt.size(), prompt_text.c_str());

  GenerationParams params;
  params.max_tokens = options.max_tokens;
  params.sampling = resolve_sampling(options.sampling, bundle.generation_config());
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

  print_generation_stats(result);
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
  add_sampling_options(*command, options->sampling, "Random seed, for repeatable sampling");
  command->add_option("--stop", options->stop, "Stop when this text appears (repeatable)");
  command->add_flag("--raw", options->raw, "Send the prompt as it is, without the chat template");
  CLI::Option* template_file = command->add_option("--chat-template", options->chat_template.file,
                                                   "Format the prompt with this Jinja template file instead of the bundle's");
  command->add_option("--chat-template-name", options->chat_template.name,
                      "Format the prompt with the bundle's template of this name (tokenizer_config.json list)")
      ->excludes(template_file);
  command->add_flag("--think", options->think, "Turn the model's thinking on (enable_thinking in the template)");
  add_template_kwargs_option(*command, options->template_kwargs);
  command->add_option("-c,--ctx-size", options->context_size, "Context size in tokens")->check(CLI::Range(int64_t(1), int64_t(1) << 24))->capture_default_str();
  command->add_option("-t,--threads", options->model.threads, "Worker threads; 0 uses every core")->check(CLI::Range(0, 1024))->capture_default_str();
  command->callback([options, &action] { action = [options] { return run(*options); }; });
}

}  // namespace mxgemma::cli
