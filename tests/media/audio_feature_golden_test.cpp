// Decoding and log-mel features against transformers' Gemma4AudioFeatureExtractor arrays written
// by scripts/oracle/audio_goldens.py (audio loaded by transformers' load_audio with soundfile).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "media/audio_decode.h"
#include "media/audio_features.h"
#include "util/npy.h"

namespace mxgemma {
namespace {

const std::filesystem::path kAudioDir = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "audio";

// Bound for clips already at 16 kHz in a lossless format. The samples match the reference
// exactly, so only the arithmetic differs. The reference's numpy rfft moves the features by under
// 1e-6 from a float64 rfft (measured by the oracle), and rounding the log-mel values, which reach
// about 6 in magnitude, to float32 costs one ulp (4.8e-7).
constexpr double kExactBound = 2e-6;

const nlohmann::json& goldens() {
  static const nlohmann::json json = [] {
    std::ifstream file(kAudioDir / "audio_goldens.json");
    return nlohmann::json::parse(file);
  }();
  return json;
}

const nlohmann::json& clip(const std::string& name) { return goldens().at("clips").at(name); }

NpyArray golden(const std::string& name, const std::string& array) {
  return read_npy(kAudioDir / (name + "." + array + ".npy"));
}

// Largest |actual - expected| over rows [first_frame, first_frame + rows) of the features, or
// infinity on a shape mismatch.
double max_abs_diff(const AudioFeatures& features, const NpyArray& expected, int first_frame = 0) {
  if (expected.shape.size() != 2 || expected.shape[1] != features.feature_size ||
      first_frame + expected.shape[0] > features.num_frames) {
    return INFINITY;
  }
  double worst = 0.0;
  const size_t offset = static_cast<size_t>(first_frame) * features.feature_size;
  for (size_t i = 0; i < expected.data.size(); ++i) {
    worst = std::max(worst, std::abs(double{features.input_features[offset + i]} - expected.data[i]));
  }
  return worst;
}

void expect_mask_equal(const AudioFeatures& features, const std::string& name) {
  const NpyArray mask = golden(name, "mask");
  ASSERT_EQ(mask.data.size(), features.input_features_mask.size()) << name;
  for (size_t i = 0; i < mask.data.size(); ++i) {
    EXPECT_EQ(mask.data[i], features.input_features_mask[i]) << name << " frame " << i;
  }
}

// Decodes a stored clip, extracts features and checks them against the reference arrays.
double check_stored_clip(const std::string& name) {
  const auto& meta = clip(name);
  const AudioFeatureConfig config;
  const std::vector<float> samples = load_audio_file(kAudioDir / meta.at("file").get<std::string>(),
                                                     config.sampling_rate);
  EXPECT_EQ(samples.size(), meta.at("num_samples_16k").get<size_t>()) << name;
  const AudioFeatures features = extract_audio_features(samples, config);
  EXPECT_EQ(features.num_frames, meta.at("num_frames").get<int>()) << name;
  EXPECT_EQ(features.num_valid_frames, meta.at("num_valid_frames").get<int>()) << name;
  EXPECT_EQ(audio_soft_token_count(features, config), meta.at("soft_tokens").get<int>()) << name;
  expect_mask_equal(features, name);
  return max_abs_diff(features, golden(name, "features"));
}

TEST(AudioFeatureGolden, LosslessClipsAt16kMatch) {
  for (const char* name : {"silence", "tone_440", "speech_like", "clipping", "short_0p1s",
                           "format_pcm_u8", "format_pcm_24", "format_pcm_32", "format_float",
                           "format_flac"}) {
    SCOPED_TRACE(name);
    EXPECT_LE(check_stored_clip(name), kExactBound);
  }
}

TEST(AudioFeatureGolden, SilenceIsLogMelFloor) {
  const std::vector<float> silence(16000, 0.0f);
  const AudioFeatures features = extract_audio_features(silence, AudioFeatureConfig{});
  for (float value : features.input_features) EXPECT_FLOAT_EQ(value, std::log(1e-3f));
}

TEST(AudioFeatureGolden, LossyClipsMatchLoosely) {
  // The reference decodes with the libvorbis and mpg123 bundled in the soundfile wheel, the test
  // with Debian's. The features differed by 2.1e-4 (Vorbis) and 4.8e-7 (MP3) when measured.
  for (const char* name : {"format_ogg", "format_mp3"}) {
    SCOPED_TRACE(name);
    EXPECT_LE(check_stored_clip(name), 1e-3);
  }
}

TEST(AudioFeatureGolden, StereoResampledMatchesSoxr) {
  const auto& meta = clip("stereo_44k1");
  const DecodedAudio decoded = decode_audio_file(kAudioDir / meta.at("file").get<std::string>());
  EXPECT_EQ(decoded.sample_rate, 44100);
  EXPECT_EQ(decoded.source_channels, 2);
  const std::vector<float> samples = resample_audio(decoded.samples, decoded.sample_rate, 16000);

  const NpyArray reference = golden("stereo_44k1", "samples_16k");
  ASSERT_EQ(samples.size(), reference.data.size());
  double worst_sample = 0.0;
  for (size_t i = 0; i < samples.size(); ++i) {
    worst_sample = std::max(worst_sample, std::abs(double{samples[i]} - reference.data[i]));
  }
  // libsamplerate (best sinc) and soxr (HQ) are different filters, so the samples agree only
  // to about 2e-3 (measured) where both pass the signal.
  EXPECT_LE(worst_sample, 5e-3);

  const AudioFeatureConfig config;
  const AudioFeatures features = extract_audio_features(samples, config);
  EXPECT_EQ(features.num_frames, meta.at("num_frames").get<int>());
  expect_mask_equal(features, "stereo_44k1");
  EXPECT_EQ(audio_soft_token_count(features, config), meta.at("soft_tokens").get<int>());

  // soxr's HQ passband ends at 91.3% of the output Nyquist frequency (7.3 kHz), and
  // libsamplerate's best sinc is flat to about 97%. The mel bins reaching above 7.2 kHz therefore
  // see different roll-offs, and their log-mel values differed by up to 0.9 when measured. Below,
  // the features agree to about 8e-4 (measured), except in the first and last valid frames, where
  // the two resamplers treat the clip edges differently (about 3e-2, measured).
  const NpyArray expected = golden("stereo_44k1", "features");
  ASSERT_EQ(expected.data.size(), features.input_features.size());
  const std::vector<double> filters = htk_mel_filter_bank(config);
  const int num_bins = config.fft_length() / 2 + 1;
  const double bin_hz = config.sampling_rate / 2.0 / (num_bins - 1);
  double worst_passband = 0.0;
  double worst_edge_frames = 0.0;
  double worst_top_bins = 0.0;
  for (int m = 0; m < features.feature_size; ++m) {
    int highest_bin = 0;
    for (int k = 0; k < num_bins; ++k) {
      if (filters[static_cast<size_t>(k) * features.feature_size + m] > 0) highest_bin = k;
    }
    const bool top_bin = highest_bin * bin_hz > 7200.0;
    for (int f = 0; f < features.num_frames; ++f) {
      const size_t i = static_cast<size_t>(f) * features.feature_size + m;
      const double diff = std::abs(double{features.input_features[i]} - expected.data[i]);
      const bool edge_frame = f == 0 || f == features.num_valid_frames - 1;
      if (top_bin) {
        worst_top_bins = std::max(worst_top_bins, diff);
      } else if (edge_frame) {
        worst_edge_frames = std::max(worst_edge_frames, diff);
      } else {
        worst_passband = std::max(worst_passband, diff);
      }
    }
  }
  EXPECT_LE(worst_passband, 3e-3);
  EXPECT_LE(worst_edge_frames, 0.1);
  EXPECT_LE(worst_top_bins, 1.5);
}

TEST(AudioFeatureGolden, NonDefaultSettingsMatch) {
  // Pre-emphasis (both flavors), input scaling with another mel_floor, and per-bin normalization,
  // each on the first 0.5 s of the speech-like clip.
  for (const char* name : {"variant_preemphasis_htk", "variant_preemphasis_plain",
                           "variant_scale_floor", "variant_per_bin"}) {
    SCOPED_TRACE(name);
    const auto& meta = clip(name);
    const auto& settings = meta.at("settings");
    AudioFeatureConfig config;
    config.preemphasis = settings.value("preemphasis", config.preemphasis);
    config.preemphasis_htk_flavor =
        settings.value("preemphasis_htk_flavor", config.preemphasis_htk_flavor);
    config.input_scale_factor = settings.value("input_scale_factor", config.input_scale_factor);
    config.mel_floor = settings.value("mel_floor", config.mel_floor);
    if (settings.contains("per_bin_mean")) {
      config.per_bin_mean = settings.at("per_bin_mean").get<std::vector<double>>();
      config.per_bin_stddev = settings.at("per_bin_stddev").get<std::vector<double>>();
    }

    std::vector<float> samples = load_audio_file(kAudioDir / meta.at("file").get<std::string>(),
                                                 config.sampling_rate);
    samples.resize(meta.at("first_samples").get<size_t>());
    const AudioFeatures features = extract_audio_features(samples, config);
    expect_mask_equal(features, name);
    // A smaller mel_floor lets the log reach about -11.5, where the float32 ulp is 9.5e-7.
    EXPECT_LE(max_abs_diff(features, golden(name, "features")), 2 * kExactBound);
  }
}

// The oracle's lcg_noise: a 32-bit LCG, int16 from the high half, a 0.1 s step envelope.
std::vector<float> lcg_noise(uint32_t seed, size_t num_samples) {
  std::vector<float> samples(num_samples);
  uint32_t state = seed;
  for (size_t n = 0; n < num_samples; ++n) {
    state = state * 1664525u + 1013904223u;
    const auto value = static_cast<int16_t>(static_cast<uint16_t>(state >> 16));
    const auto envelope = static_cast<float>(1 + (n / 1600) % 5) / 8.0f;
    samples[n] = (static_cast<float>(value) / 32768.0f) * envelope;
  }
  return samples;
}

void check_long_clip(const std::string& name) {
  const auto& meta = clip(name);
  const AudioFeatureConfig config;
  const std::vector<float> samples = lcg_noise(meta.at("seed").get<uint32_t>(),
                                               meta.at("num_samples_16k").get<size_t>());
  const AudioFeatures features = extract_audio_features(samples, config);
  EXPECT_EQ(features.num_frames, meta.at("num_frames").get<int>());
  EXPECT_EQ(features.num_valid_frames, meta.at("num_valid_frames").get<int>());
  EXPECT_EQ(audio_soft_token_count(features, config), meta.at("soft_tokens").get<int>());
  expect_mask_equal(features, name);

  const auto starts = meta.at("slice_starts").get<std::vector<int>>();
  for (size_t i = 0; i < starts.size(); ++i) {
    SCOPED_TRACE("slice starting at frame " + std::to_string(starts[i]));
    EXPECT_LE(max_abs_diff(features, golden(name, "features.slice" + std::to_string(i)), starts[i]),
              kExactBound);
  }

  // The per-bin mean over every frame checks the frames between the slices.
  const NpyArray bin_mean = golden(name, "features.bin_mean");
  ASSERT_EQ(bin_mean.data.size(), static_cast<size_t>(features.feature_size));
  for (int m = 0; m < features.feature_size; ++m) {
    double sum = 0.0;
    for (int f = 0; f < features.num_frames; ++f) {
      sum += features.input_features[static_cast<size_t>(f) * features.feature_size + m];
    }
    EXPECT_NEAR(sum / features.num_frames, bin_mean.data[m], kExactBound) << "mel bin " << m;
  }
}

TEST(AudioFeatureGolden, Long29p9sClipMatches) { check_long_clip("long_29p9s"); }

TEST(AudioFeatureGolden, Long31sClipIsTruncatedTo30s) {
  check_long_clip("long_31s");
  EXPECT_EQ(clip("long_31s").at("soft_tokens").get<int>(), 750);
}

TEST(AudioFeatureGolden, FilterBankEmptyOnlyAtBottom) {
  const AudioFeatureConfig config;
  const std::vector<double> filters = htk_mel_filter_bank(config);
  ASSERT_EQ(filters.size(), 257u * 128u);
  // The lowest HTK filter spans 0-28 Hz, so it meets only the 0 Hz bin, at its zero edge, and is
  // all zero (the filter transformers warns about). Every other filter catches a bin.
  for (int m = 0; m < 128; ++m) {
    double sum = 0.0;
    for (int k = 0; k < 257; ++k) sum += filters[static_cast<size_t>(k) * 128 + m];
    if (m == 0) {
      EXPECT_EQ(sum, 0.0);
    } else {
      EXPECT_GT(sum, 0.0) << "mel filter " << m;
    }
  }
}

}  // namespace
}  // namespace mxgemma
