// mxgemma tokenize / detokenize: check a bundle's tokenizer from outside.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"

namespace mxgemma::cli {
namespace {

std::string read_stdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

struct TokenizeOptions {
  ModelOptions model;
  std::optional<std::string> text;
  bool no_bos = false;
  bool no_special = false;
};

int tokenize(const TokenizeOptions& options) {
  LoadedModel loaded = load_model(options.model, /*with_model=*/false);
  const std::string text = options.text ? *options.text : read_stdin();
  const std::vector<int32_t> ids = loaded.tokenizer->encode(text, !options.no_bos, !options.no_special);
  std::printf("%s\n", nlohmann::json(ids).dump().c_str());
  return 0;
}

struct DetokenizeOptions {
  ModelOptions model;
  std::optional<std::string> ids;
  bool skip_special = false;
};

int detokenize(const DetokenizeOptions& options) {
  LoadedModel loaded = load_model(options.model, /*with_model=*/false);
  const std::string input = options.ids ? *options.ids : read_stdin();
  nlohmann::json parsed = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_array()) {
    throw std::invalid_argument("detokenize input: expected a JSON array of token ids, such as [2, 105, 2364]");
  }
  std::vector<int32_t> ids;
  const int32_t vocab = loaded.tokenizer->vocab_size();
  for (size_t i = 0; i < parsed.size(); ++i) {
    const nlohmann::json& value = parsed[i];
    if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() >= vocab) {
      throw std::invalid_argument("detokenize input: element " + std::to_string(i) + " (" + value.dump() +
                                  ") is not a token id in [0, " + std::to_string(vocab) + ")");
    }
    ids.push_back(value.get<int32_t>());
  }
  const std::string text = loaded.tokenizer->decode(ids, options.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* command = app.add_subcommand("tokenize", "Print the token ids of a text (stdin or --text) as a JSON array");
  command->add_option("-m,--model", options->model.bundle_dir, "Bundle folder");
  command->add_option("--text", options->text, "The text (default: read stdin to the end)");
  command->add_flag("--no-bos", options->no_bos, "Do not prepend the BOS token");
  command->add_flag("--no-special", options->no_special, "Treat special-token text such as <bos> as plain text");
  command->callback([options, &action] { action = [options] { return tokenize(*options); }; });
}

void add_detokenize_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<DetokenizeOptions>();
  CLI::App* command = app.add_subcommand("detokenize", "Print the text of a JSON array of token ids (stdin or --ids)");
  command->add_option("-m,--model", options->model.bundle_dir, "Bundle folder");
  command->add_option("--ids", options->ids, "The ids as a JSON array (default: read stdin)");
  command->add_flag("--skip-special", options->skip_special, "Leave special tokens out of the text");
  command->callback([options, &action] { action = [options] { return detokenize(*options); }; });
}

}  // namespace mxgemma::cli
