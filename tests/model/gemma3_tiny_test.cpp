// The gemma3_text decoder against mlx-lm on a tiny random Gemma 3 (fixtures/generated/tiny-gemma3,
// made by scripts/oracle/make_fixtures.py; goldens by scripts/oracle/record_gemma3_goldens.py tiny).
//
// The goldens run mlx-lm with every floating parameter upcast to fp32, so they differ from us only
// by summation order. The bounds are those of the Gemma 4 parity test (text_parity_test.cpp): a
// wrong norm convention, query scale, RoPE base or window moves logits by 0.1 or more.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "bundle/config.h"
#include "kernels/thread_pool.h"
#include "model/gemma4_text.h"
#include "tests/model/gemma3_goldens.h"
#include "util/npy.h"

namespace mxgemma {
namespace {

constexpr double kMinCosine = 0.99999;
constexpr double kMaxAbsDiff = 2e-3;
constexpr int64_t kForcedLength = 40;

const std::filesystem::path kFixtures = MXGEMMA_FIXTURE_DIR;
const char kRemake[] = "run scripts/make_fixtures.sh, then scripts/oracle/record_gemma3_goldens.py tiny";

std::filesystem::path tiny_bundle_dir() {
  const std::filesystem::path dir = kFixtures / "generated" / "tiny-gemma3";
  if (!std::filesystem::exists(dir / "config.json")) {
    throw std::runtime_error("fixture missing: " + dir.string() + ": " + kRemake);
  }
  return dir;
}

nlohmann::json tiny_goldens() { return test::read_golden_json(kFixtures / "goldens" / "tiny-gemma3.json", kRemake); }

struct Distance {
  double min_cosine = 1.0;
  double max_abs_diff = 0.0;
};

Distance row_distance(const float* actual, const float* expected, int64_t cols) {
  double dot = 0, aa = 0, ee = 0;
  Distance d;
  for (int64_t c = 0; c < cols; ++c) {
    dot += double(actual[c]) * expected[c];
    aa += double(actual[c]) * actual[c];
    ee += double(expected[c]) * expected[c];
    d.max_abs_diff = std::max(d.max_abs_diff, std::abs(double(actual[c]) - expected[c]));
  }
  d.min_cosine = dot / std::sqrt(aa * ee);
  return d;
}

class Gemma3Tiny : public ::testing::Test {
 protected:
  void SetUp() override {
    bundle_ = std::make_unique<Bundle>(Bundle::open(tiny_bundle_dir()));
    goldens_ = tiny_goldens();
    const std::string differences =
        test::compare_fingerprints(bundle_->tensors(), goldens_.at("tensor_fingerprints"));
    ASSERT_EQ(differences, "") << "tiny-gemma3 is not the bundle of the goldens: " << kRemake;
    model_ = std::make_unique<Gemma4TextModel>(*bundle_, pool_);
    forced_ = goldens_.at("forced_ids").get<std::vector<int32_t>>();
    expected_ = read_npy(kFixtures / "goldens" / "tiny-gemma3.seq40.f32.npy");
  }

  // Every row of `logits` [rows, vocab] against golden rows first_row ...
  void expect_rows_match(const std::vector<float>& logits, int64_t first_row, int64_t rows,
                         const std::string& what) {
    const int64_t vocab = model_->vocab_size();
    for (int64_t r = 0; r < rows; ++r) {
      const Distance d = row_distance(logits.data() + r * vocab,
                                      expected_.data.data() + (first_row + r) * vocab, vocab);
      EXPECT_GE(d.min_cosine, kMinCosine) << what << ", position " << first_row + r;
      EXPECT_LE(d.max_abs_diff, kMaxAbsDiff) << what << ", position " << first_row + r;
    }
  }

  ThreadPool pool_{2};
  std::unique_ptr<Bundle> bundle_;
  std::unique_ptr<Gemma4TextModel> model_;
  nlohmann::json goldens_;
  std::vector<int32_t> forced_;
  NpyArray expected_;
};

TEST_F(Gemma3Tiny, ConfigReadAsGemma3) {
  const TextConfig& config = model_->config();
  EXPECT_EQ(config.model_type, "gemma3_text");
  EXPECT_EQ(config.query_pre_attn_scalar, 48.0);
  EXPECT_EQ(config.sliding_window, 8);
  EXPECT_TRUE(config.is_full_attention(2));
  EXPECT_FALSE(config.is_full_attention(3));
  EXPECT_EQ(config.rope_sliding.rope_theta, 10000.0);
  EXPECT_EQ(config.rope_full.rope_theta, 1000000.0);
  EXPECT_EQ(config.rope_full.factor, 8.0);
  EXPECT_EQ(config.final_logit_softcapping, 0.0);
  ASSERT_EQ(expected_.shape, (std::vector<int64_t>{kForcedLength, model_->vocab_size()}));
}

TEST_F(Gemma3Tiny, TeacherForcedLogitsMatch) {
  KVCache cache = model_->make_cache(kForcedLength);
  std::vector<float> logits;
  model_->forward(forced_, cache, Gemma4TextModel::Logits::all, logits);
  expect_rows_match(logits, 0, kForcedLength, "one pass");
}

// Chunks of 5 and single-token steps cross the window of 8 in the cache, which one pass does not.
TEST_F(Gemma3Tiny, ChunkedAndCachedDecodeMatch) {
  KVCache chunked = model_->make_cache(kForcedLength, /*max_chunk=*/5);
  std::vector<float> logits;
  model_->forward(forced_, chunked, Gemma4TextModel::Logits::all, logits);
  expect_rows_match(logits, 0, kForcedLength, "chunks of 5");

  const int64_t prefill = 12;
  KVCache cache = model_->make_cache(kForcedLength);
  model_->forward(std::span(forced_).first(prefill), cache, Gemma4TextModel::Logits::last, logits);
  expect_rows_match(logits, prefill - 1, 1, "prefill");
  for (int64_t t = prefill; t < kForcedLength; ++t) {
    model_->forward(std::span(forced_).subspan(size_t(t), 1), cache, Gemma4TextModel::Logits::last, logits);
    expect_rows_match(logits, t, 1, "decode step");
  }
}

TEST_F(Gemma3Tiny, GreedyMatchesMlxLm) {
  std::vector<int32_t> tokens = goldens_.at("prompt_ids").get<std::vector<int32_t>>();
  const auto expected = goldens_.at("greedy").at("tokens").get<std::vector<int32_t>>();
  KVCache cache = model_->make_cache(int64_t(tokens.size() + expected.size()));
  std::vector<float> logits;
  std::vector<int32_t> generated;
  std::span<const int32_t> input = tokens;
  for (size_t step = 0; step < expected.size(); ++step) {
    model_->forward(input, cache, Gemma4TextModel::Logits::last, logits);
    generated.push_back(int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    input = std::span(generated).last(1);
  }
  EXPECT_EQ(generated, expected);
}

// A copy of the tiny bundle whose config.json `edit` changes, for the bad-input tests.
std::filesystem::path edited_copy(const std::string& name, void (*edit)(nlohmann::json&)) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("mxgemma_gemma3_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::copy(tiny_bundle_dir(), dir, std::filesystem::copy_options::recursive);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  edit(config);
  std::ofstream(dir / "config.json") << config.dump(2);
  return dir;
}

TEST(Gemma3Config, RejectsPatternDisagreeingWithLayerTypes) {
  const auto dir = edited_copy("pattern", [](nlohmann::json& c) { c["sliding_window_pattern"] = 2; });
  try {
    parse_model_config(dir / "config.json");
    FAIL() << "expected a config error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("sliding_window_pattern"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("layer_types"), std::string::npos) << error.what();
  }
}

TEST(Gemma3Config, MissingQueryScalarDefaultsTo256) {
  const auto dir = edited_copy("scalar", [](nlohmann::json& c) { c.erase("query_pre_attn_scalar"); });
  EXPECT_EQ(parse_model_config(dir / "config.json").text.query_pre_attn_scalar, 256.0);
}

TEST(Gemma3Config, NonPositiveQueryScalarRejected) {
  const auto dir = edited_copy("zero_scalar", [](nlohmann::json& c) { c["query_pre_attn_scalar"] = 0; });
  const Bundle bundle = Bundle::open(dir);
  ThreadPool pool(1);
  try {
    Gemma4TextModel model(bundle, pool);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("query_pre_attn_scalar"), std::string::npos) << error.what();
  }
}

TEST(Gemma3Config, UnknownModelTypeRejected) {
  const auto dir = edited_copy("model_type", [](nlohmann::json& c) { c["model_type"] = "gemma2"; });
  try {
    parse_model_config(dir / "config.json");
    FAIL() << "expected a config error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("gemma2"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace mxgemma
