#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "engine/generator.h"

namespace mxgemma {
namespace {

std::map<int32_t, int> draw(const SamplingParams& params, const std::vector<float>& logits, int draws) {
  Sampler sampler(params);
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) {
    std::vector<float> copy = logits;
    ++counts[sampler.sample(copy, {})];
  }
  return counts;
}

TEST(Sampler, GreedyPicksArgmax) {
  SamplingParams params;
  params.temperature = 0.0f;
  Sampler sampler(params);
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f};
  EXPECT_EQ(sampler.sample(logits, {}), 1);
}

TEST(Sampler, ArgmaxTieTakesLowestIndex) {
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f};
  EXPECT_EQ(argmax(logits), 1);
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplingParams params;
  params.top_k = 1;
  const auto counts = draw(params, {0.0f, 0.5f, 0.4f}, 50);
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts.begin()->first, 1);
}

TEST(Sampler, SameSeedSameSequence) {
  SamplingParams params;
  params.seed = 1234;
  const std::vector<float> logits(100, 0.0f);
  Sampler first(params);
  Sampler second(params);
  for (int i = 0; i < 20; ++i) {
    std::vector<float> a = logits, b = logits;
    EXPECT_EQ(first.sample(a, {}), second.sample(b, {}));
  }
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  SamplingParams params;
  params.seed = 7;
  params.temperature = 2.0f;
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  const int draws = 20000;
  const auto counts = draw(params, logits, draws);
  double denominator = 0.0;
  for (float l : logits) denominator += std::exp(l / 2.0);
  for (int32_t token = 0; token < 3; ++token) {
    const double expected = std::exp(logits[token] / 2.0) / denominator;
    const double observed = double(counts.count(token) ? counts.at(token) : 0) / draws;
    EXPECT_NEAR(observed, expected, 0.02) << "token " << token;
  }
}

TEST(Sampler, TopPKeepsSmallestSetReachingMass) {
  SamplingParams params;
  params.seed = 3;
  params.top_p = 0.6f;
  // Probabilities 0.5, 0.3, 0.2: the first two reach 0.6.
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  const auto counts = draw(params, logits, 3000);
  EXPECT_EQ(counts.count(2), 0u);
  EXPECT_GT(counts.at(0), 0);
  EXPECT_GT(counts.at(1), 0);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  SamplingParams params;
  params.seed = 5;
  params.min_p = 0.5f;
  // Probabilities 0.5, 0.3, 0.2: 0.2 < 0.5 * 0.5 is dropped, 0.3 is kept.
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  const auto counts = draw(params, logits, 3000);
  EXPECT_EQ(counts.count(2), 0u);
  EXPECT_GT(counts.at(1), 0);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 2.0f;
  Sampler sampler(params);
  // Token 0 (logit 3) was seen: 3 / 2 = 1.5 < 2, so token 1 wins.
  std::vector<float> logits = {3.0f, 2.0f, -1.0f};
  const std::vector<int32_t> history = {0, 2};
  EXPECT_EQ(sampler.sample(logits, history), 1);
  EXPECT_FLOAT_EQ(logits[0], 1.5f);
  EXPECT_FLOAT_EQ(logits[2], -2.0f);
}

TEST(Sampler, RepeatLastNLimitsPenaltyWindow) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 2.0f;
  params.repeat_last_n = 1;
  Sampler sampler(params);
  std::vector<float> logits = {3.0f, 2.0f};
  const std::vector<int32_t> history = {0, 1};  // only token 1 is inside the window
  sampler.sample(logits, history);
  EXPECT_FLOAT_EQ(logits[0], 3.0f);
  EXPECT_FLOAT_EQ(logits[1], 1.0f);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.presence_penalty = 0.5f;
  params.frequency_penalty = 0.25f;
  Sampler sampler(params);
  std::vector<float> logits = {1.0f, 1.0f};
  const std::vector<int32_t> history = {0, 0};
  sampler.sample(logits, history);
  EXPECT_FLOAT_EQ(logits[0], 1.0f - 0.5f - 0.5f);
  EXPECT_FLOAT_EQ(logits[1], 1.0f);
}

TEST(Sampler, LogitBiasShiftsAndBans) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.logit_bias = {{0, -100.0f}, {2, 1.5f}};
  Sampler sampler(params);
  std::vector<float> logits = {5.0f, 1.0f, 0.0f};
  EXPECT_EQ(sampler.sample(logits, {}), 2);  // 0 is banned, and 0 + 1.5 beats 1
  EXPECT_TRUE(std::isinf(logits[0]));
  EXPECT_LT(logits[0], 0.0f);
  EXPECT_FLOAT_EQ(logits[2], 1.5f);

  // A banned token is never drawn, at any temperature.
  params.temperature = 5.0f;
  params.logit_bias = {{1, -100.0f}};
  for (uint64_t seed = 0; seed < 200; ++seed) {
    params.seed = seed;
    Sampler hot(params);
    std::vector<float> flat = {0.0f, 0.0f, 0.0f};
    EXPECT_NE(hot.sample(flat, {}), 1);
  }
}

TEST(Sampler, DefaultsComeFromGenerationConfig) {
  GenerationConfig config;
  config.do_sample = true;
  config.temperature = 0.7;
  config.top_k = 64;
  config.top_p = 0.95;
  SamplingParams params = sampling_defaults(config);
  EXPECT_FLOAT_EQ(params.temperature, 0.7f);
  EXPECT_EQ(params.top_k, 64);
  EXPECT_FLOAT_EQ(params.top_p, 0.95f);
  EXPECT_FLOAT_EQ(params.min_p, 0.0f);
  config.do_sample = false;  // greedy whatever the temperature, as Hugging Face's generate
  EXPECT_FLOAT_EQ(sampling_defaults(config).temperature, 0.0f);
}

TEST(Sampler, InvalidParametersAreRejected) {
  SamplingParams negative_temperature;
  negative_temperature.temperature = -1.0f;
  EXPECT_THROW(validate(negative_temperature), std::invalid_argument);
  SamplingParams zero_top_p;
  zero_top_p.top_p = 0.0f;
  EXPECT_THROW(validate(zero_top_p), std::invalid_argument);
  SamplingParams nan_temperature;
  nan_temperature.temperature = NAN;
  EXPECT_THROW(validate(nan_temperature), std::invalid_argument);
  SamplingParams big_min_p;
  big_min_p.min_p = 1.5f;
  EXPECT_THROW(validate(big_min_p), std::invalid_argument);
  SamplingParams zero_penalty;
  zero_penalty.repetition_penalty = 0.0f;
  EXPECT_THROW(validate(zero_penalty), std::invalid_argument);
}

TEST(StopStringMatcher, HoldsBackPossiblePrefix) {
  StopStringMatcher matcher({"</end>"});
  bool stopped = false;
  EXPECT_EQ(matcher.push("hello </e", stopped), "hello ");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(matcher.push("nd> tail", stopped), "");
  EXPECT_TRUE(stopped);
}

TEST(StopStringMatcher, ReleasesTextThatIsNotAStop) {
  StopStringMatcher matcher({"STOP"});
  bool stopped = false;
  EXPECT_EQ(matcher.push("ST", stopped), "");
  EXPECT_EQ(matcher.push("ART", stopped), "START");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(matcher.push("S", stopped), "");
  EXPECT_EQ(matcher.finish(), "S");
}

TEST(StopStringMatcher, EarliestOfSeveralStops) {
  StopStringMatcher matcher({"bb", "a"});
  bool stopped = false;
  EXPECT_EQ(matcher.push("xxbbya", stopped), "xx");
  EXPECT_TRUE(stopped);
}

}  // namespace
}  // namespace mxgemma
