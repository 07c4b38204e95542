#include "cli/common.h"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "text/chat_template.h"
#include "util/log.h"

#ifndef MXGEMMA_DEFAULT_BUNDLE
#define MXGEMMA_DEFAULT_BUNDLE "models/default"
#endif

namespace mxgemma::cli {

std::string default_bundle_dir() {
  if (const char* env = std::getenv("MXGEMMA_MODEL"); env != nullptr && *env != '\0') return env;
  return MXGEMMA_DEFAULT_BUNDLE;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 4) {
    bytes /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.2f %s", bytes, units[unit]);
  return text;
}

LoadedModel load_model(const ModelOptions& options, bool with_model) {
  const std::string dir = options.bundle_dir.empty() ? default_bundle_dir() : options.bundle_dir;
  if (options.bundle_dir.empty() && !std::filesystem::exists(dir)) {
    throw std::runtime_error("no bundle given and the default bundle " + dir +
                             " does not exist: pass -m BUNDLE or run scripts/demo.sh once to create it");
  }
  const auto start = std::chrono::steady_clock::now();
  LoadedModel loaded;
  loaded.bundle = std::make_unique<Bundle>(Bundle::open(dir));
  const auto tokenizer_start = std::chrono::steady_clock::now();
  loaded.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_file(loaded.bundle->tokenizer_json_path()));
  loaded.tokenizer_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - tokenizer_start).count();
  if (with_model) {
    loaded.pool = std::make_unique<ThreadPool>(options.threads);
    loaded.model = std::make_unique<Gemma4TextModel>(*loaded.bundle, *loaded.pool);
  }
  loaded.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const Bundle& bundle = *loaded.bundle;
  MXG_LOG_INFO("loaded %s: %s, %s layout, %zu shards, %s, %d quantized tensors, tokenizer of %d tokens, in %.2f s "
               "(tokenizer %.2f s)",
               dir.c_str(), bundle.config().text.model_type.c_str(), layout_name(bundle.layout()),
               bundle.tensors().num_shards(), format_bytes(double(bundle.tensors().total_bytes())).c_str(),
               bundle.num_quantized_tensors(), loaded.tokenizer->vocab_size(), loaded.load_seconds,
               loaded.tokenizer_seconds);
  return loaded;
}

std::string format_prompt(const Bundle& bundle, const std::string& system_text, const std::string& user_text,
                          bool raw, bool enable_thinking) {
  if (raw) return user_text;
  const TokenizerConfig& tokenizer_config = bundle.tokenizer_config();
  if (tokenizer_config.chat_template.empty()) {
    throw std::runtime_error(bundle.dir().string() +
                             ": the bundle has no chat template (chat_template.jinja or tokenizer_config.json "
                             "\"chat_template\"); pass --raw to send the prompt as it is");
  }
  // ordered_json keeps insertion order, as the Python dicts a template expects do.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!system_text.empty()) messages.push_back({{"role", "system"}, {"content", system_text}});
  messages.push_back({{"role", "user"}, {"content", user_text}});
  nlohmann::ordered_json context = {
      {"messages", messages},
      {"add_generation_prompt", true},
      {"bos_token", tokenizer_config.bos_token},
      {"eos_token", tokenizer_config.eos_token},
      {"enable_thinking", enable_thinking},
  };
  try {
    return ChatTemplate(tokenizer_config.chat_template).render(context);
  } catch (const std::exception& error) {
    throw std::runtime_error(bundle.dir().string() + ": " + error.what());
  }
}

int64_t peak_rss_bytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return int64_t(usage.ru_maxrss) * 1024;
}

}  // namespace mxgemma::cli
