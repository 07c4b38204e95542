// Gemma 4 log-mel features as transformers' Gemma4AudioFeatureExtractor (transformers 5.25)
// computes them: semicausal left padding, a periodic Hann window, |rfft|, an HTK mel filter bank
// without normalization, log(mel + mel_floor), and a per-frame validity mask.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

namespace mxgemma {

// The feature_extractor section of processor_config.json, or a flat preprocessor_config.json,
// plus the processor's audio token settings. Defaults are those of the transformers classes.
struct AudioFeatureConfig {
  int feature_size = 128;  // mel bins
  int sampling_rate = 16000;
  double frame_length_ms = 20.0;
  double hop_length_ms = 10.0;
  double min_frequency = 0.0;
  double max_frequency = 8000.0;
  double preemphasis = 0.0;
  bool preemphasis_htk_flavor = true;
  bool fft_overdrive = false;
  double dither = 0.0;
  double input_scale_factor = 1.0;
  double mel_floor = 1e-3;
  double padding_value = 0.0;
  std::optional<std::vector<double>> per_bin_mean;    // feature_size values when present
  std::optional<std::vector<double>> per_bin_stddev;  // feature_size values when present
  int64_t max_length = 480000;  // samples kept; longer input is truncated (30 s at 16 kHz)
  int pad_to_multiple_of = 128;
  int audio_seq_length = 750;    // processor cap on soft tokens per clip
  int audio_ms_per_token = 40;

  int frame_length() const;  // round(sampling_rate * frame_length_ms / 1000): 320
  int hop_length() const;    // round(sampling_rate * hop_length_ms / 1000): 160
  int fft_length() const;    // next power of two >= frame_length, doubled with fft_overdrive: 512
};

// Reads processor_config.json (its "feature_extractor" object, and audio_seq_length /
// audio_ms_per_token from the top level) or preprocessor_config.json (the same keys at the top
// level). Throws std::runtime_error naming the file and field on a missing file or a bad value,
// and on a non-zero dither, which the reference draws from an unseeded random generator.
AudioFeatureConfig load_audio_feature_config(const std::filesystem::path& path);

// Checks ranges and throws std::invalid_argument naming the field.
void validate_audio_feature_config(const AudioFeatureConfig& config);

struct AudioFeatures {
  int num_frames = 0;
  int feature_size = 0;
  // [num_frames, feature_size], row-major; rows of invalid frames are 0.
  std::vector<float> input_features;
  // [num_frames]; 1 where the frame's whole 321-sample window is real audio, not padding.
  std::vector<uint8_t> input_features_mask;
  int num_valid_frames = 0;
};

// Computes the log-mel features of one clip already at config.sampling_rate. Throws
// std::invalid_argument on an empty clip or a NaN or infinite sample.
AudioFeatures extract_audio_features(std::span<const float> samples,
                                     const AudioFeatureConfig& config);

// The number of audio soft tokens the processor inserts for these features: the mask subsampled
// by the tower's two stride-2 convolutions (kernel 3, padding 1), counted, capped at
// audio_seq_length. At 10 ms per frame this is one token per 40 ms.
int audio_soft_token_count(const AudioFeatures& features, const AudioFeatureConfig& config);

// The mel filter bank [fft_length / 2 + 1, feature_size] as transformers' mel_filter_bank builds
// it with mel_scale "htk" and norm None, in double precision.
std::vector<double> htk_mel_filter_bank(const AudioFeatureConfig& config);

}  // namespace mxgemma
