// mxgemma chat: a multi-turn conversation read from stdin, with optional tool calls.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/chat_session.h"
#include "engine/generator.h"
#include "engine/media_attachment.h"
#include "engine/media_prompt.h"

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
  std::string template_kwargs;
  int64_t context_size = 4096;
  std::vector<std::string> images;
  std::vector<std::string> audio_clips;
};

int chat(const ChatOptions& options) {
  const Json tools = options.tools_path.empty() ? Json::array() : read_tools_file(options.tools_path);
  const Json template_kwargs = parse_template_kwargs(options.template_kwargs);
  LoadedModel loaded = load_model(options.model);
  SelectedChatTemplate chat_template = select_chat_template(*loaded.bundle, options.chat_template);
  Generator generator(*loaded.model, *loaded.tokenizer);
  const int64_t context_size =
      std::min<int64_t>(options.context_size, loaded.bundle->text_config().max_position_embeddings);

  auto generate = [&](const MediaPrompt& prompt, int turn, const TextCallback& on_text) {
    // The generator needs room for at least one new token after the prompt.
    if (int64_t(prompt.tokens.size()) >= context_size) {
      throw std::length_error("the conversation is " + std::to_string(prompt.tokens.size()) +
                              " tokens and no longer fits the context of " + std::to_string(context_size) +
                              " tokens; /reset to start over, or restart with a larger --ctx-size");
    }
    GenerationParams params;
    params.max_tokens = options.max_tokens;
    // Each reply samples with the seed plus its turn number, so a seeded session is repeatable
    // without every reply using the same seed.
    params.sampling = resolve_sampling(options.sampling, loaded.bundle->generation_config(), uint64_t(turn));
    params.stop_token_ids = loaded.bundle->generation_config().eos_token_ids;
    return generator.generate(prompt.tokens, params, context_size, on_text, prompt.soft_tokens());
  };
  ChatStreams streams{std::cout, std::cerr, std::cerr, ::isatty(STDERR_FILENO) != 0};
  ChatSession session(*loaded.bundle, *loaded.tokenizer, std::move(chat_template), generate, streams, options.system,
                      options.think, tools);
  session.set_template_kwargs(template_kwargs);
  session.on_reply(print_generation_stats);
  // Made on the first attachment, so a text chat never reads processor_config.json.
  std::unique_ptr<MediaEncoder> media_encoder;
  session.set_media_encoder([&](const MediaInput& input) {
    if (!media_encoder) media_encoder = std::make_unique<MediaEncoder>(*loaded.bundle, *loaded.pool);
    return encode_attachment(*media_encoder, loaded.bundle->config(), input, context_size);
  });
  // A file given on the command line that cannot be used ends the command, unlike /image.
  for (const std::string& path : options.images) session.attach(path, MediaInput::Kind::image);
  for (const std::string& path : options.audio_clips) session.attach(path, MediaInput::Kind::audio);

  // One line per message until /exit or end of input.
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  std::string line;
  while (true) {
    if (interactive) std::cerr << "> " << std::flush;
    if (!std::getline(std::cin, line)) {
      if (interactive) std::cerr << '\n';
      break;
    }
    if (!session.handle_line(line)) break;
  }
  return 0;
}

}  // namespace

void add_chat_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<ChatOptions>();

  CLI::App* command = app.add_subcommand(
      "chat",
      "Chat with the model, one user message per stdin line. Commands: /image FILE and /audio FILE attach a file "
      "to the next message, which lists its images, then its audio clips, then its text; /reset clears the history "
      "and pending attachments and keeps the system message; /system TEXT sets the system message and clears the "
      "history; /tool-result NAME RESULT answers the model's pending call NAME (RESULT is a JSON object or text), "
      "and the model continues by itself once every call has a result; /help lists the commands; /exit or end of "
      "input quits. Content goes to stdout, thinking to stderr, and each tool call to stdout as a "
      "{\"tool_call\": {\"name\", \"arguments\"}} JSON line");
  command->add_option("-m,--model", options->model.bundle_dir, "Bundle folder (default: $MXGEMMA_MODEL or models/default)");

  command->add_option("--system", options->system, "The system message of the conversation");
  command->add_option("--image", options->images,
                      "Attach an image file (JPEG, PNG, WebP, GIF, BMP) to the first message, before its text (repeatable)")
      ->type_name("FILE");
  command->add_option("--audio", options->audio_clips,
                      "Attach an audio file (WAV, FLAC, OGG, MP3; at most 30 s) to the first message, after its images "
                      "(repeatable)")
      ->type_name("FILE");
  command->add_flag("--think", options->think, "Turn the model's thinking on (enable_thinking in the template); it goes to stderr");
  add_template_kwargs_option(*command, options->template_kwargs);
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
