// mxgemma template: render a chat template over a request, as transformers' apply_chat_template
// with tokenize=False does, and print the prompt exactly.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "util/json_depth.h"
#include "cli/common.h"

namespace mxgemma::cli {

void add_template_command(CLI::App& app, CommandAction& action);

namespace {

struct TemplateOptions {
  std::string bundle_dir;
  std::string request_path;
  ChatTemplateChoice choice;
};

nlohmann::ordered_json read_request(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::runtime_error(path + ": cannot open the request file");
  std::ostringstream text;
  text << stream.rdbuf();
  nlohmann::ordered_json request;
  try {
    request = nlohmann::ordered_json::parse(text.str());
  } catch (const nlohmann::json::parse_error& error) {
    throw std::runtime_error(path + ": invalid JSON: " + error.what());
  }
  if (json_deeper_than(request, kMaxJsonDepth)) {
    throw std::runtime_error(path + ": nests arrays and objects more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  }
  return request;
}

int render_template(const TemplateOptions& options) {
  // Read the request first, so a bad request fails before the bundle is opened.
  const nlohmann::ordered_json request = read_request(options.request_path);
  const std::string dir = options.bundle_dir.empty() ? default_bundle_dir() : options.bundle_dir;
  // Only the configs and the template are needed, but Bundle::open also checks the weights.
  const Bundle bundle = Bundle::open(dir);
  const nlohmann::ordered_json context = chat_template_context(request, options.request_path, bundle.tokenizer_config());
  const std::string prompt = render_chat_template(select_chat_template(bundle, options.choice), context);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

void add_template_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<TemplateOptions>();
  CLI::App* command = app.add_subcommand(
      "template", "Print the prompt a chat template renders for a request, exactly, without a trailing newline");
  command->add_option("-m,--model", options->bundle_dir, "Bundle folder (default: $MXGEMMA_MODEL or models/default)");
  command->add_option("--request", options->request_path,
                      "JSON object with messages, optional tools, add_generation_prompt and template keywords "
                      "(enable_thinking, tool_choice, ...), as apply_chat_template takes them")
      ->required();
  CLI::Option* file = command->add_option("--template", options->choice.file,
                                          "Render this Jinja template file instead of the bundle's");
  command->add_option("--chat-template-name", options->choice.name,
                      "Render the bundle's template of this name (tokenizer_config.json list)")
      ->excludes(file);
  command->callback([options, &action] { action = [options] { return render_template(*options); }; });
}

}  // namespace mxgemma::cli
