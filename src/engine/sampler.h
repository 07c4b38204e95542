// Token sampling from logits: repetition penalty, temperature, top-k, top-p and min-p, applied in
// the order Hugging Face's generate applies them; temperature 0 is greedy.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "bundle/config.h"

namespace mxgemma {

struct SamplingParams {
  float temperature = 1.0f;         // 0: greedy (argmax)
  int top_k = 0;                    // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off; keeps tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f;  // 1: off; >1 makes recent tokens less likely
  int repeat_last_n = 64;           // how many recent tokens the penalty looks at
  float presence_penalty = 0.0f;    // OpenAI-style, subtracted once per seen token
  float frequency_penalty = 0.0f;   // OpenAI-style, subtracted per occurrence
  // OpenAI logit_bias: added to a token's logit before sampling; -100 or less bans the token.
  std::vector<std::pair<int32_t, float>> logit_bias;
  uint64_t seed = 0;
};

// Throws std::invalid_argument naming the field for out-of-range values.
void validate(const SamplingParams& params);

// The sampling settings of generation_config.json over the sampler's defaults. As Hugging Face's
// generate does, do_sample false means greedy whatever the temperature.
SamplingParams sampling_defaults(const GenerationConfig& config);

// The bias at or below which logit_bias bans a token, as OpenAI documents -100.
constexpr float kBanningLogitBias = -100.0f;

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Picks the next token from `logits` (modified in place), given the tokens so far.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

  // Like sample, but picks only tokens for which `allowed` is true (constrained decoding): the
  // distribution is the same with every other token's probability set to 0. Returns -1 when no
  // token of `logits` is allowed.
  int32_t sample_allowed(std::span<float> logits, std::span<const int32_t> history,
                         const std::function<bool(int32_t)>& allowed);

 private:
  void apply_penalties(std::span<float> logits, std::span<const int32_t> history) const;
  // Temperature, top-k, top-p and min-p over logits that already carry the penalties.
  int32_t pick(std::span<const float> logits);

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> candidates_;
  std::vector<float> probabilities_;
};

// Index of the largest value; the lowest index wins ties, as numpy's argmax.
int32_t argmax(std::span<const float> values);

}  // namespace mxgemma
