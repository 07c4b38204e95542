#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace mxgemma {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Length of the longest suffix of `text` that is a proper prefix of some stop string.
size_t held_suffix_length(const std::string& text, const std::vector<std::string>& stop_strings) {
  size_t held = 0;
  for (const std::string& stop : stop_strings) {
    const size_t longest = std::min(text.size(), stop.size() - 1);
    for (size_t n = longest; n > held; --n) {
      if (text.compare(text.size() - n, n, stop, 0, n) == 0) {
        held = n;
        break;
      }
    }
  }
  return held;
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop_token: return "stop";
    case FinishReason::stop_string: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
  }
  return "";
}

std::string StopStringMatcher::push(const std::string& text, bool& stopped) {
  stopped = false;
  pending_ += text;
  size_t first_match = std::string::npos;
  for (const std::string& stop : stop_strings_) {
    if (stop.empty()) continue;
    first_match = std::min(first_match, pending_.find(stop));
  }
  if (first_match != std::string::npos) {
    stopped = true;
    std::string out = pending_.substr(0, first_match);
    pending_.clear();
    return out;
  }
  const size_t held = held_suffix_length(pending_, stop_strings_);
  std::string out = pending_.substr(0, pending_.size() - held);
  pending_.erase(0, pending_.size() - held);
  return out;
}

std::string StopStringMatcher::finish() {
  std::string out;
  out.swap(pending_);
  return out;
}

GenerationResult Generator::generate(const std::vector<int32_t>& prompt, const GenerationParams& params,
                                     int64_t context_size, const TextCallback& on_text,
                                     std::span<const Gemma4TextModel::SoftTokens> soft_tokens) {
  if (prompt.empty()) throw std::invalid_argument("the prompt is empty: nothing to generate from");
  if (int64_t(prompt.size()) >= context_size) {
    throw std::invalid_argument("the prompt is " + std::to_string(prompt.size()) +
                                " tokens, which does not fit the context size of " +
                                std::to_string(context_size) + " tokens; shorten it or raise --ctx-size");
  }
  if (params.max_tokens < 0) throw std::invalid_argument("invalid max_tokens: must be >= 0");

  GenerationResult result;
  result.prompt_tokens = int64_t(prompt.size());
  KVCache cache = model_.make_cache(context_size, std::max<int64_t>(1, params.prefill_chunk));
  Sampler sampler(params.sampling);
  StreamingDecoder decoder(tokenizer_, /*skip_special=*/false);
  StopStringMatcher matcher(params.stop_strings);
  std::vector<int32_t> history = prompt;
  std::vector<float> logits;

  const auto start = std::chrono::steady_clock::now();
  model_.forward(prompt, cache, Gemma4TextModel::Logits::last, logits, soft_tokens);
  result.prefill_seconds = seconds_since(start);

  const int64_t budget = std::min<int64_t>(params.max_tokens, context_size - int64_t(prompt.size()));
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return true;
    result.text += piece;
    return on_text ? on_text(piece) : true;
  };

  std::chrono::steady_clock::time_point decode_start;
  result.finish_reason = FinishReason::length;
  for (int64_t step = 0; step < budget; ++step) {
    const int32_t token = sampler.sample(logits, history);
    if (step == 0) {
      result.time_to_first_token = seconds_since(start);
      decode_start = std::chrono::steady_clock::now();
    }
    if (std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) !=
        params.stop_token_ids.end()) {
      result.finish_reason = FinishReason::stop_token;
      break;
    }
    result.tokens.push_back(token);
    history.push_back(token);

    bool stopped = false;
    if (!emit(matcher.push(decoder.push(token), stopped))) {
      result.finish_reason = FinishReason::cancelled;
      break;
    }
    if (stopped) {
      result.finish_reason = FinishReason::stop_string;
      break;
    }
    if (step + 1 == budget) break;
    model_.forward(std::span<const int32_t>(&token, 1), cache, Gemma4TextModel::Logits::last, logits);
  }
  if (result.finish_reason != FinishReason::stop_string && result.finish_reason != FinishReason::cancelled) {
    bool stopped = false;
    emit(matcher.push(decoder.finish(), stopped));
    if (stopped) result.finish_reason = FinishReason::stop_string;
    else emit(matcher.finish());
  }
  if (!result.tokens.empty()) result.decode_seconds = seconds_since(decode_start);
  return result;
}

}  // namespace mxgemma
