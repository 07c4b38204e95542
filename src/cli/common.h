// Pieces shared by the subcommands: loading a bundle with its log line, prompt formatting and
// process statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "bundle/bundle.h"
#include "kernels/thread_pool.h"
#include "model/gemma4_text.h"
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

// The prompt as the bundle's chat template formats one user turn (with an optional system turn)
// and the generation prompt; or `user_text` unchanged when raw.
std::string format_prompt(const Bundle& bundle, const std::string& system_text, const std::string& user_text,
                          bool raw, bool enable_thinking);

// Peak resident set size of this process in bytes.
int64_t peak_rss_bytes();

// "1.23 GiB"
std::string format_bytes(double bytes);

}  // namespace mxgemma::cli
