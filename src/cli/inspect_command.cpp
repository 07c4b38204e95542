// mxgemma inspect: describe any MLX bundle (the facts of its model card) and name what is missing
// or inconsistent, without running the model.
#include <cstdio>
#include <memory>
#include <string>

#include "bundle/bundle_facts.h"
#include "cli/commands.h"

namespace mxgemma::cli {

namespace {

struct InspectOptions {
  std::string bundle_dir;
  bool json = false;
};

// Prints the facts and findings, then returns exit status 0 when the bundle is consistent and 1
// when a finding is an error.
int inspect_bundle(const InspectOptions& options) {
  const BundleFacts facts = describe_bundle(options.bundle_dir);
  const std::string text =
      options.json ? bundle_facts_json(facts).dump(2) + "\n" : bundle_facts_text(facts);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return facts.has_errors() ? 1 : 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* command = app.add_subcommand(
      "inspect",
      "Print what a bundle holds (architecture, quantization, shards, processor, tokenizer, "
      "template) and what is missing or inconsistent; exit 1 when the bundle cannot load");
  command->add_option("bundle", options->bundle_dir, "Bundle folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  command->add_flag("--json", options->json, "Print the facts and findings as one JSON object");
  command->callback([options, &action] { action = [options] { return inspect_bundle(*options); }; });
}

}  // namespace mxgemma::cli
