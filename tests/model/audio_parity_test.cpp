// The Gemma 4 audio tower, the audio embedder and the decoder with audio soft tokens against
// transformers 5.25 (goldens recorded by scripts/oracle/record_audio_goldens.py in float32 on the
// CPU, cross-checked there against mlx-vlm). The clips go through our own decoder and feature
// extractor, which match transformers' extractor within 2e-6 (tests/media).
//
// Bounds: the tower and the embedder run in fp32 like the reference. They differ from it only
// by summation order and the libm used for exp and tanh, so the tower and soft tokens must agree
// within 1e-4 max abs and cosine 0.99999. That is 60 times the 1.6e-6 measured here, and 500 times
// below the 0.05 that a one-key change of the attention window makes (see
// WindowOfThirteenKeysIsOutsideBound). Logits use the text path's bounds (text_parity_test.cpp):
// 2e-3 max abs and cosine 0.99999, for the MXFP4 decoder's summation order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "kernels/thread_pool.h"
#include "media/audio_decode.h"
#include "media/audio_features.h"
#include "model/gemma4_audio.h"
#include "model/gemma4_text.h"
#include "tests/model/parity_util.h"
#include "util/npy.h"

namespace mxgemma {
namespace {

constexpr double kTowerMinCosine = 0.99999;
constexpr double kTowerMaxAbsDiff = 1e-4;
constexpr double kLogitsMinCosine = 0.99999;
constexpr double kLogitsMaxAbsDiff = 2e-3;

using parity::bundle_dir;
using parity::compare_rows;
using parity::Comparison;
using parity::kFixtures;
const std::filesystem::path kAudio = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "audio";

nlohmann::json audio_manifest() {
  return parity::read_golden_manifest("audio_manifest.json", "scripts/oracle/record_audio_goldens.py");
}

class AudioParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    bundle_ = std::make_unique<Bundle>(Bundle::open(bundle_dir(GetParam())));
    audio_ = std::make_unique<Gemma4AudioModel>(*bundle_, pool_);
    feature_config_ = load_audio_feature_config(bundle_->dir() / "processor_config.json");
  }

  AudioFeatures features_of(const std::string& clip) const {
    const std::vector<float> samples = load_audio_file(kAudio / (clip + ".wav"), feature_config_.sampling_rate);
    return extract_audio_features(samples, feature_config_);
  }

  std::filesystem::path golden(const std::string& suffix) const {
    return kFixtures / "goldens" / (GetParam() + ".audio." + suffix + ".npy");
  }

  ThreadPool pool_{2};
  std::unique_ptr<Bundle> bundle_;
  std::unique_ptr<Gemma4AudioModel> audio_;
  AudioFeatureConfig feature_config_;
};

TEST_P(AudioParity, TowerAndEmbedderMatchReference) {
  for (const char* clip : {"tower_1s", "tower_3s"}) {
    const AudioFeatures features = features_of(clip);
    const std::vector<float> tower = audio_->encode_features(features);
    const std::vector<float> soft = audio_->embed(tower);

    const int64_t count = audio_soft_token_count(features, feature_config_);
    const int64_t tower_width = audio_->config().output_proj_dims;
    const int64_t text_hidden = audio_->text_hidden_size();
    const NpyArray tower_golden = read_npy(golden(std::string(clip) + ".tower"));
    const NpyArray soft_golden = read_npy(golden(std::string(clip) + ".soft"));
    ASSERT_EQ(tower_golden.shape, (std::vector<int64_t>{count, tower_width})) << clip;
    ASSERT_EQ(soft_golden.shape, (std::vector<int64_t>{count, text_hidden})) << clip;
    ASSERT_EQ(tower.size(), tower_golden.data.size()) << clip;
    ASSERT_EQ(soft.size(), soft_golden.data.size()) << clip;

    const Comparison tower_diff = compare_rows(tower.data(), tower_golden.data.data(), count, tower_width);
    EXPECT_GE(tower_diff.min_cosine, kTowerMinCosine) << clip << " worst row " << tower_diff.worst_row;
    EXPECT_LE(tower_diff.max_abs_diff, kTowerMaxAbsDiff) << clip;
    const Comparison soft_diff = compare_rows(soft.data(), soft_golden.data.data(), count, text_hidden);
    EXPECT_GE(soft_diff.min_cosine, kTowerMinCosine) << clip << " worst row " << soft_diff.worst_row;
    EXPECT_LE(soft_diff.max_abs_diff, kTowerMaxAbsDiff) << clip;
    std::printf("%s %s: %lld soft tokens; tower min cosine %.8f max abs diff %.3g; soft tokens %.8f / %.3g\n",
                GetParam().c_str(), clip, static_cast<long long>(count), tower_diff.min_cosine,
                tower_diff.max_abs_diff, soft_diff.min_cosine, soft_diff.max_abs_diff);
  }
}

TEST_P(AudioParity, SoftTokenCountMatchesProcessor) {
  const nlohmann::json clips = audio_manifest().at("bundles").at(GetParam());
  for (const char* clip : {"tower_1s", "tower_3s"}) {
    const AudioFeatures features = features_of(clip);
    // The clips end in a padding frame, so the last subsampled position is invalid and dropped.
    EXPECT_LT(features.num_valid_frames, features.num_frames) << clip;
    const int count = audio_soft_token_count(features, feature_config_);
    EXPECT_EQ(count, clips.at(clip).at("soft_tokens").get<int>()) << clip;
    const std::vector<float> soft = audio_->encode_audio(features);
    EXPECT_EQ(soft.size(), size_t(count) * size_t(audio_->text_hidden_size())) << clip;
  }
}

TEST_P(AudioParity, PromptLogitsMatchReference) {
  Gemma4TextModel text(*bundle_, pool_);
  const nlohmann::json clips = audio_manifest().at("bundles").at(GetParam());
  int checked = 0;
  for (const char* clip : {"tower_1s", "tower_3s"}) {
    if (!std::filesystem::exists(golden(std::string(clip) + ".logits"))) continue;
    const std::vector<int32_t> ids = clips.at(clip).at("ids").get<std::vector<int32_t>>();
    const std::vector<float> soft = audio_->encode_audio(features_of(clip));

    const NpyArray expected = read_npy(golden(std::string(clip) + ".logits"));
    const int64_t vocab = text.vocab_size();
    ASSERT_EQ(expected.shape, (std::vector<int64_t>{int64_t(ids.size()), vocab})) << clip;
    // One chunk, then chunks of 16 so that the clip straddles chunk boundaries.
    for (int64_t chunk : {int64_t(512), int64_t(16)}) {
      KVCache cache = text.make_cache(int64_t(ids.size()), chunk);
      std::vector<float> logits;
      text.forward(ids, cache, Gemma4TextModel::Logits::all, logits, {bundle_->config().audio_token_id, soft});
      const Comparison diff = compare_rows(logits.data(), expected.data.data(), int64_t(ids.size()), vocab);
      EXPECT_GE(diff.min_cosine, kLogitsMinCosine) << clip << " chunk " << chunk << " worst position "
                                                   << diff.worst_row;
      EXPECT_LE(diff.max_abs_diff, kLogitsMaxAbsDiff) << clip << " chunk " << chunk;
      std::printf("%s %s chunk %lld: min cosine %.8f max abs diff %.3g\n", GetParam().c_str(), clip,
                  static_cast<long long>(chunk), diff.min_cosine, diff.max_abs_diff);
    }
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

// Guards against a golden that the soft tokens do not move: the placeholder embeddings alone must
// give logits far from the reference.
TEST_P(AudioParity, PromptWithoutSoftTokensDiffers) {
  Gemma4TextModel text(*bundle_, pool_);
  const std::vector<int32_t> ids =
      audio_manifest().at("bundles").at(GetParam()).at("tower_1s").at("ids").get<std::vector<int32_t>>();
  KVCache cache = text.make_cache(int64_t(ids.size()));
  std::vector<float> logits;
  text.forward(ids, cache, Gemma4TextModel::Logits::all, logits);
  const NpyArray expected = read_npy(golden("tower_1s.logits"));
  const Comparison diff = compare_rows(logits.data(), expected.data.data(), int64_t(ids.size()), text.vocab_size());
  EXPECT_GT(diff.max_abs_diff, 0.1);
}

TEST_P(AudioParity, BadFeaturesThrow) {
  const AudioFeatures features = features_of("tower_1s");

  AudioFeatures wrong_width = features;
  wrong_width.feature_size = features.feature_size / 2;
  wrong_width.input_features.resize(size_t(features.num_frames) * size_t(wrong_width.feature_size));
  EXPECT_THROW(audio_->encode_features(wrong_width), std::invalid_argument);

  AudioFeatures empty;
  empty.feature_size = features.feature_size;
  EXPECT_THROW(audio_->encode_features(empty), std::invalid_argument);

  AudioFeatures short_values = features;
  short_values.input_features.pop_back();
  EXPECT_THROW(audio_->encode_features(short_values), std::invalid_argument);

  AudioFeatures all_padding = features;
  std::fill(all_padding.input_features_mask.begin(), all_padding.input_features_mask.end(), uint8_t{0});
  EXPECT_THROW(audio_->encode_features(all_padding), std::invalid_argument);

  AudioFeatures hole = features;
  hole.input_features_mask[3] = 0;
  EXPECT_THROW(audio_->encode_features(hole), std::invalid_argument);

  std::vector<float> ragged_tower(size_t(audio_->config().output_proj_dims + 1), 1.0f);
  EXPECT_THROW(audio_->embed(ragged_tower), std::invalid_argument);
}

TEST_P(AudioParity, WrongWidthMessageNamesField) {
  AudioFeatures features = features_of("tower_1s");
  features.feature_size = 80;
  features.input_features.resize(size_t(features.num_frames) * 80);
  try {
    audio_->encode_features(features);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("input_feat_size"), std::string::npos) << error.what();
  }
}

// transformers and mlx-vlm both give each query 12 keys. Gemma 3n's audio tower gave 13 (one
// more frame back). The oracle also recorded the tiny-hf tower with that window, and our output
// must be outside the tower bound from it, or the bound could not tell the two windows apart.
TEST(AudioModel, WindowOfThirteenKeysIsOutsideBound) {
  ThreadPool pool(2);
  const Bundle bundle = Bundle::open(bundle_dir("tiny-hf"));
  Gemma4AudioModel audio(bundle, pool);
  const AudioFeatureConfig feature_config = load_audio_feature_config(bundle.dir() / "processor_config.json");
  const std::vector<float> samples = load_audio_file(kAudio / "tower_3s.wav", feature_config.sampling_rate);
  const std::vector<float> tower = audio.encode_features(extract_audio_features(samples, feature_config));

  const NpyArray thirteen = read_npy(kFixtures / "goldens" / "tiny-hf.audio.tower_3s.window13.tower.npy");
  ASSERT_EQ(thirteen.shape.size(), 2u);
  ASSERT_EQ(tower.size(), thirteen.data.size());
  const Comparison diff = compare_rows(tower.data(), thirteen.data.data(), thirteen.shape[0], thirteen.shape[1]);
  EXPECT_GT(diff.max_abs_diff, 10 * kTowerMaxAbsDiff);
  EXPECT_LT(diff.min_cosine, kTowerMinCosine);
  std::printf("13-key window: min cosine %.8f max abs diff %.3g\n", diff.min_cosine, diff.max_abs_diff);
}

TEST(AudioModel, BundleWithoutAudioConfigThrows) {
  ThreadPool pool(1);
  const Bundle bundle = Bundle::open(bundle_dir("tiny-gemma3"));
  EXPECT_THROW(Gemma4AudioModel(bundle, pool), std::invalid_argument);
}

// A copy of tiny-hf whose processor caps a clip at 10 soft tokens: the tower must return the
// first 10 rows of the uncapped output, as many as audio_soft_token_count gives.
TEST(AudioModel, SoftTokensCappedAtAudioSeqLength) {
  const std::filesystem::path copy = parity::copy_bundle_with_edit(
      "tiny-hf", "audio_cap", "processor_config.json",
      [](nlohmann::json& processor) { processor["audio_seq_length"] = 10; });

  ThreadPool pool(2);
  const Bundle bundle = Bundle::open(copy);
  Gemma4AudioModel audio(bundle, pool);
  const AudioFeatureConfig feature_config = load_audio_feature_config(copy / "processor_config.json");
  const std::vector<float> samples = load_audio_file(kAudio / "tower_1s.wav", feature_config.sampling_rate);
  const AudioFeatures features = extract_audio_features(samples, feature_config);
  const std::vector<float> tower = audio.encode_features(features);

  ASSERT_EQ(audio_soft_token_count(features, feature_config), 10);
  const int64_t width = audio.config().output_proj_dims;
  ASSERT_EQ(tower.size(), size_t(10 * width));
  const NpyArray uncapped = read_npy(kFixtures / "goldens" / "tiny-hf.audio.tower_1s.tower.npy");
  const Comparison diff = compare_rows(tower.data(), uncapped.data.data(), 10, width);
  EXPECT_LE(diff.max_abs_diff, kTowerMaxAbsDiff);
  std::filesystem::remove_all(copy);
}

// Copies of tiny-hf whose audio_config sets what the tower does not implement must be rejected
// at load, naming the field.
TEST(AudioModel, UnsupportedAudioConfigThrows) {
  const std::vector<std::pair<std::string, nlohmann::json>> cases = {
      {"hidden_act", "gelu_pytorch_tanh"},
      {"attention_context_left", 1},
      {"attention_logit_cap", 0.0},
  };
  for (const auto& [field, value] : cases) {
    const std::filesystem::path copy = parity::copy_bundle_with_edit(
        "tiny-hf", "audio_config", "config.json",
        [&](nlohmann::json& config) { config["audio_config"][field] = value; });

    ThreadPool pool(1);
    const Bundle bundle = Bundle::open(copy);
    try {
      Gemma4AudioModel audio(bundle, pool);
      ADD_FAILURE() << field << ": expected std::runtime_error";
    } catch (const std::runtime_error& error) {
      EXPECT_NE(std::string(error.what()).find(field), std::string::npos) << error.what();
    }
    std::filesystem::remove_all(copy);
  }
}

INSTANTIATE_TEST_SUITE_P(TinyBundles, AudioParity, ::testing::Values("tiny-hf", "tiny-mlxvlm"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace mxgemma
