// Audio decoding for the Gemma 4 audio tower: any file libsndfile reads (WAV PCM 8/16/24/32-bit and
// float, FLAC, OGG/Vorbis, MP3 from libsndfile 1.1 on), mixed to mono and resampled to the
// feature extractor's rate with libsamplerate.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace mxgemma {

struct AudioDecodeOptions {
  // Maximum source duration accepted, in seconds. The header's frame count is checked before anything is
  // allocated, and the running count while reading, so a lying header cannot force a huge buffer.
  double max_duration_s = 1200.0;
};

// Mono samples, in [-1, 1] from integer PCM (float formats may exceed it).
struct DecodedAudio {
  std::vector<float> samples;
  int sample_rate = 0;
  int source_channels = 0;
};

// Decodes a sound file and mixes its channels to mono by the arithmetic mean, as transformers'
// load_audio and mlx-vlm's load_audio do. Throws std::invalid_argument naming the file when it is
// empty, not audio, truncated, longer than max_duration_s, or contains a NaN or infinite sample.
DecodedAudio decode_audio_file(const std::filesystem::path& path,
                               const AudioDecodeOptions& options = {});

// Decodes an in-memory sound file (a request body, say); `name` labels it in errors.
DecodedAudio decode_audio_memory(std::span<const uint8_t> bytes, const std::string& name,
                                 const AudioDecodeOptions& options = {});

// Resamples mono audio with libsamplerate's SRC_SINC_BEST_QUALITY. The output has
// ceil(n * target_rate / source_rate) samples, the length transformers' load_audio returns.
// Throws std::invalid_argument on a non-positive rate.
std::vector<float> resample_audio(std::span<const float> samples, int source_rate, int target_rate);

// Decodes, mixes to mono and resamples to target_rate (16000 for Gemma 4).
std::vector<float> load_audio_file(const std::filesystem::path& path, int target_rate,
                                   const AudioDecodeOptions& options = {});

}  // namespace mxgemma
