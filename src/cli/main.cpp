// mxgemma: run Gemma 4 MLX bundles from the command line.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "util/log.h"

int main(int argc, char** argv) {
  CLI::App app{"mxgemma: a native runtime for Gemma 4 MLX MXFP4 bundles"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags such as --verbose may follow the subcommand
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Print debug detail to stderr");

  mxgemma::cli::CommandAction action;
  mxgemma::cli::add_run_command(app, action);
  mxgemma::cli::add_tokenize_command(app, action);
  mxgemma::cli::add_detokenize_command(app, action);
  mxgemma::cli::add_logits_command(app, action);
  mxgemma::cli::add_bench_command(app, action);
  mxgemma::cli::add_template_command(app, action);
  mxgemma::cli::add_chat_command(app, action);
  mxgemma::cli::add_serve_command(app, action);
  mxgemma::cli::add_inspect_command(app, action);
  mxgemma::cli::add_convert_command(app, action);

  app.set_version_flag("--version", "mxgemma " MXGEMMA_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& request) {
    return app.exit(request);
  } catch (const CLI::CallForAllHelp& request) {
    return app.exit(request);
  } catch (const CLI::CallForVersion& request) {
    return app.exit(request);
  } catch (const CLI::ParseError& error) {
    std::fprintf(stderr, "mxgemma: error: %s; see mxgemma --help\n", error.what());
    return 2;
  }
  if (verbose) mxgemma::set_log_level(mxgemma::LogLevel::debug);
  try {
    return action();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mxgemma: error: %s\n", error.what());
    return 1;
  }
}
