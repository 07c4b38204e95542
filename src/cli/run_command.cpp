// mxgemma run: generate a reply to one prompt, streamed to stdout.
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/generator.h"
#include "engine/media_attachment.h"
#include "engine/media_prompt.h"
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
  std::vector<std::string> images;
  std::vector<std::string> audio_clips;
};

// The --image files, then the --audio files, read but not decoded yet.
std::vector<MediaInput> read_media_flags(const RunOptions& options) {
  std::vector<MediaInput> media;
  for (const std::string& path : options.images) media.push_back(read_media_file(path, MediaInput::Kind::image));
  for (const std::string& path : options.audio_clips) media.push_back(read_media_file(path, MediaInput::Kind::audio));
  return media;
}

// Checks that the prompt has one placeholder per input file, with advice in the flags' terms.
// MediaEncoder::expand checks the same counts, but its message does not name the flags.
void check_placeholders(std::span<const int32_t> prompt, const RunOptions& options, const ModelConfig& config) {
  const int64_t image_placeholders = count_token(prompt, config.image_token_id);
  const int64_t audio_placeholders = count_token(prompt, config.audio_token_id);
  if (image_placeholders == int64_t(options.images.size()) && audio_placeholders == int64_t(options.audio_clips.size())) {
    return;
  }
  const std::string counts = "the prompt has " + std::to_string(image_placeholders) + " <|image|> and " +
                             std::to_string(audio_placeholders) + " <|audio|> placeholders for " +
                             std::to_string(options.images.size()) + " --image and " +
                             std::to_string(options.audio_clips.size()) + " --audio files";
  if (options.raw) {
    throw std::invalid_argument(counts + "; with --raw, write one <|image|> per --image and one <|audio|> per --audio "
                                         "in the prompt, in the order of the flags");
  }
  const bool extra = image_placeholders > int64_t(options.images.size()) ||
                     audio_placeholders > int64_t(options.audio_clips.size());
  if (extra) {
    throw std::invalid_argument(counts + "; the chat template adds them, so the prompt text must not contain "
                                         "<|image|> or <|audio|> itself");
  }
  throw std::invalid_argument(counts + "; the chat template does not render {\"type\": \"image\"} or "
                                       "{\"type\": \"audio\"} content parts as placeholders: use a template "
                                       "that does, or --raw");
}

// Expands the prompt's placeholders with the inputs' soft tokens and logs one line of what ran.
MediaPrompt encode_media(const Bundle& bundle, ThreadPool& pool, const std::vector<int32_t>& prompt,
                         const std::vector<MediaInput>& media, const RunOptions& options, int64_t context_size) {
  const ModelConfig& config = bundle.config();
  // A bundle without the needed tower is reported by the encoder, before any placeholder count.
  const bool has_towers = (options.images.empty() || config.vision) && (options.audio_clips.empty() || config.audio);
  if (has_towers) check_placeholders(prompt, options, config);
  MediaEncoder encoder(bundle, pool);
  MediaPrompt expanded = encoder.expand(prompt, media, context_size);

  // Each input's soft tokens are one run of its placeholder id, between its begin and end markers.
  std::string summary;
  size_t next_image = 0, next_audio = 0;
  for (size_t begin = 0; begin < expanded.tokens.size();) {
    const int32_t token = expanded.tokens[begin];
    size_t end = begin + 1;
    if (token == config.image_token_id || token == config.audio_token_id) {
      while (end < expanded.tokens.size() && expanded.tokens[end] == token) ++end;
      const bool is_image = token == config.image_token_id;
      const std::string& path = is_image ? options.images[next_image++] : options.audio_clips[next_audio++];
      if (!summary.empty()) summary += ", ";
      summary += std::string(is_image ? "image " : "audio ") + path + " (" + std::to_string(end - begin) + " soft tokens)";
    }
    begin = end;
  }
  MXG_LOG_INFO("encoded %s in %.2f s", summary.c_str(), expanded.encode_seconds);
  return expanded;
}

int run(const RunOptions& options) {
  if (options.prompt.empty()) throw std::invalid_argument("invalid --prompt: the prompt is empty");
  for (const std::string& stop : options.stop) {
    if (stop.empty()) throw std::invalid_argument("invalid --stop: a stop string must not be empty");
  }
  const nlohmann::ordered_json template_kwargs = parse_template_kwargs(options.template_kwargs);
  const std::vector<MediaInput> media = read_media_flags(options);
  LoadedModel loaded = load_model(options.model);
  const Bundle& bundle = *loaded.bundle;
  const std::string prompt_text = format_prompt(bundle, options.system, options.prompt, options.raw, options.think,
                                                options.chat_template, template_kwargs, media);
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
  MediaPrompt expanded;
  if (media.empty()) {
    expanded.tokens = prompt;
  } else {
    expanded = encode_media(bundle, *loaded.pool, prompt, media, options, context_size);
  }

  Generator generator(*loaded.model, *loaded.tokenizer);
  auto print_piece = [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  const GenerationResult result =
      generator.generate(expanded.tokens, params, context_size, print_piece, expanded.soft_tokens());
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
  command->add_option("--image", options->images,
                      "An image file (JPEG, PNG, WebP, GIF, BMP) for the user message, placed before its text; with "
                      "--raw, the prompt needs one <|image|> per --image (repeatable)")
      ->type_name("FILE");
  command->add_option("--audio", options->audio_clips,
                      "An audio file (WAV, FLAC, OGG, MP3; at most 30 s) for the user message, placed after its images "
                      "and before its text; with --raw, the prompt needs one <|audio|> per --audio (repeatable)")
      ->type_name("FILE");
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
