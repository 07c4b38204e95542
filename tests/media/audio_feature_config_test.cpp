// Reading AudioFeatureConfig from processor_config.json and preprocessor_config.json as
// transformers saves them, and rejecting bad values.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "media/audio_features.h"

namespace mxgemma {
namespace {

const std::filesystem::path kAudioDir = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "audio";

void expect_e2b_values(const AudioFeatureConfig& config) {
  EXPECT_EQ(config.feature_size, 128);
  EXPECT_EQ(config.sampling_rate, 16000);
  EXPECT_EQ(config.frame_length(), 320);
  EXPECT_EQ(config.hop_length(), 160);
  EXPECT_EQ(config.fft_length(), 512);
  EXPECT_DOUBLE_EQ(config.min_frequency, 0.0);
  EXPECT_DOUBLE_EQ(config.max_frequency, 8000.0);
  EXPECT_DOUBLE_EQ(config.mel_floor, 1e-3);
  EXPECT_DOUBLE_EQ(config.preemphasis, 0.0);
  EXPECT_TRUE(config.preemphasis_htk_flavor);
  EXPECT_FALSE(config.per_bin_mean.has_value());
  EXPECT_FALSE(config.per_bin_stddev.has_value());
  EXPECT_EQ(config.audio_seq_length, 750);
  EXPECT_EQ(config.audio_ms_per_token, 40);
}

TEST(AudioFeatureConfig, ReadsNestedProcessorConfig) {
  expect_e2b_values(load_audio_feature_config(kAudioDir / "processor_config.json"));
}

TEST(AudioFeatureConfig, ReadsFlatPreprocessorConfig) {
  expect_e2b_values(load_audio_feature_config(kAudioDir / "preprocessor_config.json"));
}

class AudioFeatureConfigBad : public ::testing::Test {
 protected:
  // Writes the flat config with `key` set to `value` and returns the error message of loading it.
  std::string load_error(const std::string& key, const nlohmann::json& value) {
    std::ifstream in(kAudioDir / "preprocessor_config.json");
    nlohmann::json json = nlohmann::json::parse(in);
    json[key] = value;
    const auto path = std::filesystem::temp_directory_path() / "mxgemma_audio_config_bad.json";
    std::ofstream(path) << json.dump();
    try {
      load_audio_feature_config(path);
    } catch (const std::runtime_error& error) {
      std::filesystem::remove(path);
      return error.what();
    }
    std::filesystem::remove(path);
    return "";
  }
};

TEST_F(AudioFeatureConfigBad, RejectsBadFields) {
  EXPECT_NE(load_error("feature_size", "128").find("feature_size must be a number"),
            std::string::npos);
  EXPECT_NE(load_error("feature_size", 0).find("feature_size must be positive"), std::string::npos);
  EXPECT_NE(load_error("max_frequency", 9000.0).find("max_frequency"), std::string::npos);
  EXPECT_NE(load_error("mel_floor", 0.0).find("mel_floor"), std::string::npos);
  EXPECT_NE(load_error("dither", 1e-4).find("dither must be 0"), std::string::npos);
  EXPECT_NE(load_error("frame_length", 400).find("disagree"), std::string::npos);
  EXPECT_NE(load_error("padding_side", "left").find("padding_side"), std::string::npos);
  EXPECT_NE(load_error("per_bin_mean", nlohmann::json::array({1.0, 2.0})).find("per_bin_mean"),
            std::string::npos);
  EXPECT_NE(load_error("preemphasis_htk_flavor", 1).find("must be a boolean"), std::string::npos);
}

TEST(AudioFeatureConfig, MissingFileNamesPath) {
  try {
    load_audio_feature_config(kAudioDir / "no_such_config.json");
    FAIL() << "no exception";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("no_such_config.json"), std::string::npos);
  }
}

TEST(AudioFeatureConfig, SoftTokensFollowFortyMsPerToken) {
  // 1 s at 16 kHz is already a multiple of 128 samples: (16000 + 160 - 321) / 160 + 1 = 99
  // frames, and the two stride-2 convolutions keep 50, then 25 soft tokens, one per 40 ms.
  const AudioFeatureConfig config;
  const std::vector<float> one_second(16000, 0.25f);
  const AudioFeatures features = extract_audio_features(one_second, config);
  EXPECT_EQ(features.num_frames, 99);
  EXPECT_EQ(audio_soft_token_count(features, config), 25);

  AudioFeatureConfig capped = config;
  capped.audio_seq_length = 10;
  EXPECT_EQ(audio_soft_token_count(features, capped), 10);
}

}  // namespace
}  // namespace mxgemma
