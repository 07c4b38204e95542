// The subcommands of the mxgemma CLI. Each add_*_command registers its options on `app`. When the
// user picks that subcommand, `action` is set to the function that runs it and returns the exit code.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace mxgemma::cli {

using CommandAction = std::function<int()>;

void add_run_command(CLI::App& app, CommandAction& action);
void add_tokenize_command(CLI::App& app, CommandAction& action);
void add_detokenize_command(CLI::App& app, CommandAction& action);
void add_logits_command(CLI::App& app, CommandAction& action);
void add_bench_command(CLI::App& app, CommandAction& action);
void add_template_command(CLI::App& app, CommandAction& action);
void add_chat_command(CLI::App& app, CommandAction& action);
void add_serve_command(CLI::App& app, CommandAction& action);
void add_inspect_command(CLI::App& app, CommandAction& action);
void add_convert_command(CLI::App& app, CommandAction& action);

}  // namespace mxgemma::cli
