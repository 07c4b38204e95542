#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace mxgemma {

void validate(const SamplingParams& p) {
  auto fail = [](const std::string& field, const std::string& rule) {
    throw std::invalid_argument("invalid " + field + ": " + rule);
  };
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) fail("temperature", "must be a number >= 0");
  if (p.top_k < 0) fail("top_k", "must be >= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) fail("top_p", "must be in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) fail("min_p", "must be in [0, 1]");
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty)) {
    fail("repetition_penalty", "must be a number > 0");
  }
  if (p.repeat_last_n < 0) fail("repeat_last_n", "must be >= 0");
  if (!std::isfinite(p.presence_penalty)) fail("presence_penalty", "must be finite");
  if (!std::isfinite(p.frequency_penalty)) fail("frequency_penalty", "must be finite");
  for (const auto& [token, bias] : p.logit_bias) {
    if (token < 0) fail("logit_bias", "token id " + std::to_string(token) + " is negative");
    if (!std::isfinite(bias)) fail("logit_bias", "the bias of token " + std::to_string(token) + " must be finite");
  }
}

SamplingParams sampling_defaults(const GenerationConfig& config) {
  SamplingParams params;
  if (config.temperature) params.temperature = float(*config.temperature);
  if (!config.do_sample) params.temperature = 0.0f;
  if (config.top_k) params.top_k = *config.top_k;
  if (config.top_p) params.top_p = float(*config.top_p);
  if (config.min_p) params.min_p = float(*config.min_p);
  if (config.repetition_penalty) params.repetition_penalty = float(*config.repetition_penalty);
  return params;
}

int32_t argmax(std::span<const float> values) {
  return int32_t(std::max_element(values.begin(), values.end()) - values.begin());
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) { validate(params); }

void Sampler::apply_penalties(std::span<float> logits, std::span<const int32_t> history) const {
  for (const auto& [token, bias] : params_.logit_bias) {
    if (size_t(token) >= logits.size()) continue;  // the server checks ids against the vocabulary
    float& logit = logits[size_t(token)];
    logit = bias <= kBanningLogitBias ? -std::numeric_limits<float>::infinity() : logit + bias;
  }
  const bool repetition = params_.repetition_penalty != 1.0f;
  const bool openai = params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f;
  if ((!repetition && !openai) || params_.repeat_last_n == 0) return;
  const size_t window = std::min(history.size(), size_t(params_.repeat_last_n));
  std::unordered_map<int32_t, int> counts;
  for (size_t i = history.size() - window; i < history.size(); ++i) {
    if (history[i] >= 0 && size_t(history[i]) < logits.size()) ++counts[history[i]];
  }
  for (const auto& [token, count] : counts) {
    float& logit = logits[size_t(token)];
    // The CTRL-paper penalty as Hugging Face applies it: divide positive logits, multiply negative.
    if (repetition) logit = logit > 0.0f ? logit / params_.repetition_penalty : logit * params_.repetition_penalty;
    logit -= params_.presence_penalty + params_.frequency_penalty * float(count);
  }
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  apply_penalties(logits, history);
  return pick(logits);
}

int32_t Sampler::sample_allowed(std::span<float> logits, std::span<const int32_t> history,
                                const std::function<bool(int32_t)>& allowed) {
  apply_penalties(logits, history);
  constexpr float kExcluded = -std::numeric_limits<float>::infinity();
  // Rejection first: with a model that follows the format, the first pick is usually allowed.
  // Excluding a rejected token and picking again samples from the renormalized rest.
  constexpr int kMaxRejections = 16;
  for (int attempt = 0; attempt < kMaxRejections; ++attempt) {
    if (logits.empty() || logits[size_t(argmax(logits))] == kExcluded) return -1;
    const int32_t token = pick(logits);
    if (allowed(token)) return token;
    logits[size_t(token)] = kExcluded;
  }
  // Then one pass over the whole vocabulary.
  bool any = false;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] == kExcluded) continue;
    if (allowed(int32_t(i))) any = true;
    else logits[i] = kExcluded;
  }
  return any ? pick(logits) : -1;
}

int32_t Sampler::pick(std::span<const float> logits) {
  if (params_.temperature == 0.0f || params_.top_k == 1) return argmax(logits);

  // Candidates sorted by logit, cut by top-k first so the sort stays short.
  const size_t vocab = logits.size();
  candidates_.resize(vocab);
  std::iota(candidates_.begin(), candidates_.end(), 0);
  size_t kept = params_.top_k > 0 ? std::min(vocab, size_t(params_.top_k)) : vocab;
  auto by_logit = [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b); };
  std::partial_sort(candidates_.begin(), candidates_.begin() + ptrdiff_t(kept), candidates_.end(), by_logit);
  candidates_.resize(kept);

  const float inv_temperature = 1.0f / params_.temperature;
  const float max_logit = logits[size_t(candidates_[0])] * inv_temperature;
  probabilities_.resize(kept);
  double sum = 0.0;
  for (size_t i = 0; i < kept; ++i) {
    probabilities_[i] = std::exp(logits[size_t(candidates_[i])] * inv_temperature - max_logit);
    sum += probabilities_[i];
  }
  for (float& p : probabilities_) p = float(p / sum);

  // Top-p keeps the smallest prefix whose mass reaches top_p (always at least one token).
  if (params_.top_p < 1.0f) {
    double mass = 0.0;
    size_t cut = kept;
    for (size_t i = 0; i < kept; ++i) {
      mass += probabilities_[i];
      if (mass >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
    kept = cut;
  }
  if (params_.min_p > 0.0f) {
    const float threshold = params_.min_p * probabilities_[0];
    size_t cut = 1;
    while (cut < kept && probabilities_[cut] >= threshold) ++cut;
    kept = cut;
  }

  double total = 0.0;
  for (size_t i = 0; i < kept; ++i) total += probabilities_[i];
  std::uniform_real_distribution<double> uniform(0.0, total);
  double r = uniform(rng_);
  for (size_t i = 0; i < kept; ++i) {
    r -= probabilities_[i];
    if (r < 0.0) return candidates_[i];
  }
  return candidates_[kept - 1];
}

}  // namespace mxgemma
