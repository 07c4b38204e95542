// mxgemma logits: the logits of every position of a token sequence, for comparing runtimes.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/npy.h"

namespace mxgemma::cli {
namespace {

struct LogitsOptions {
  ModelOptions model;
  std::string tokens;
  std::string out;
  int top = 0;
  int64_t chunk = 512;
};

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" \t", used) != std::string::npos || value < 0 || value > INT32_MAX) {
      throw std::invalid_argument("--tokens: \"" + item + "\" is not a token id; expected a list such as 2,105,2364");
    }
    ids.push_back(int32_t(value));
  }
  if (ids.empty()) throw std::invalid_argument("--tokens: the list is empty");
  return ids;
}

int logits(const LogitsOptions& options) {
  if (options.out.empty() == (options.top <= 0)) {
    throw std::invalid_argument("logits: give exactly one of --out FILE.npy and --top K, with K >= 1");
  }
  const std::vector<int32_t> ids = parse_token_list(options.tokens);
  LoadedModel loaded = load_model(options.model);
  Gemma4TextModel& model = *loaded.model;
  KVCache cache = model.make_cache(int64_t(ids.size()), options.chunk);
  std::vector<float> values;
  model.forward(ids, cache, Gemma4TextModel::Logits::all, values);

  const int64_t vocab = model.vocab_size();
  if (!options.out.empty()) {
    write_npy_f32(options.out, values.data(), {int64_t(ids.size()), vocab});
    return 0;
  }
  nlohmann::json positions = nlohmann::json::array();
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  const int k = int(std::min<int64_t>(options.top, vocab));
  for (size_t t = 0; t < ids.size(); ++t) {
    const float* row = values.data() + int64_t(t) * vocab;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    nlohmann::json top = nlohmann::json::array();
    for (int i = 0; i < k; ++i) top.push_back({{"id", order[size_t(i)]}, {"logit", row[order[size_t(i)]]}});
    positions.push_back({{"position", t}, {"token", ids[t]}, {"top", top}});
  }
  std::printf("%s\n", positions.dump().c_str());
  return 0;
}

}  // namespace

void add_logits_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<LogitsOptions>();
  CLI::App* command = app.add_subcommand("logits", "Write the logits of every position of a token sequence");
  command->add_option("-m,--model", options->model.bundle_dir, "Bundle folder");
  command->add_option("--tokens", options->tokens, "Comma-separated token ids, such as 2,105,2364")->required();
  command->add_option("--out", options->out, "Write all logits as a float32 .npy file of shape [tokens, vocab]");
  command->add_option("--top", options->top, "Print the top K logits of each position as JSON instead");
  command->add_option("--chunk", options->chunk, "Tokens per prefill forward pass")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  command->add_option("-t,--threads", options->model.threads, "Worker threads; 0 uses every core")->check(CLI::Range(0, 1024));
  command->callback([options, &action] { action = [options] { return logits(*options); }; });
}

}  // namespace mxgemma::cli
