// Bad audio input: every case must end in one std::invalid_argument that names the file, without
// a crash or a huge allocation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "media/audio_decode.h"
#include "media/audio_features.h"

namespace mxgemma {
namespace {

const std::filesystem::path kAudioDir = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "audio";

std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(file), {});
}

// Returns the message of the std::invalid_argument that decoding `file` throws, from the file
// and from memory, or "" when either does not throw one.
std::string decode_error(const std::string& file) {
  std::string from_file;
  try {
    decode_audio_file(kAudioDir / file);
  } catch (const std::invalid_argument& error) {
    from_file = error.what();
  }
  const std::vector<uint8_t> bytes = read_bytes(kAudioDir / file);
  try {
    decode_audio_memory(bytes, file);
  } catch (const std::invalid_argument& error) {
    const std::string from_memory = error.what();
    return from_file.empty() || from_memory.empty() ? "" : from_file;
  }
  return "";
}

void expect_one_line_naming(const std::string& message, const std::string& file,
                            const std::string& cause) {
  EXPECT_NE(message.find(file), std::string::npos) << message;
  EXPECT_NE(message.find(cause), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(AudioBadInput, NotAudioIsRejected) {
  expect_one_line_naming(decode_error("bad_not_audio.wav"), "bad_not_audio.wav",
                         "not a readable audio file");
}

TEST(AudioBadInput, EmptyFileIsRejected) {
  expect_one_line_naming(decode_error("bad_empty.wav"), "bad_empty.wav", "empty");
}

TEST(AudioBadInput, TruncatedWavIsRejected) {
  expect_one_line_naming(decode_error("bad_truncated.wav"), "bad_truncated.wav", "truncated");
}

TEST(AudioBadInput, TruncatedFlacIsRejected) {
  expect_one_line_naming(decode_error("bad_truncated.flac"), "bad_truncated.flac", "truncated");
}

TEST(AudioBadInput, WavHeaderClaimingBillionFramesIsRejected) {
  // The data chunk claims 10^9 frames (2e9 bytes) over 100 real ones.
  expect_one_line_naming(decode_error("bad_huge_header.wav"), "bad_huge_header.wav",
                         "truncated: the data chunk header claims 2000000000 bytes");
}

TEST(AudioBadInput, FlacHeaderClaimingBillionFramesIsRejected) {
  // STREAMINFO claims 10^9 samples (17 hours at 16 kHz): rejected before any buffer is sized.
  expect_one_line_naming(decode_error("bad_huge_header.flac"), "bad_huge_header.flac",
                         "header claims 1000000000 frames");
}

TEST(AudioBadInput, NanSampleIsRejected) {
  expect_one_line_naming(decode_error("bad_nan.wav"), "bad_nan.wav", "sample 100 of channel 0");
}

TEST(AudioBadInput, MissingFileIsRejected) {
  expect_one_line_naming(decode_error("no_such_file.wav"), "no_such_file.wav", "cannot be read");
}

TEST(AudioBadInput, MemoryDecodeMatchesFile) {
  // The good path of the in-memory decoder, so the rejections above are not its only output.
  const DecodedAudio from_file = decode_audio_file(kAudioDir / "format_flac.flac");
  const DecodedAudio from_memory =
      decode_audio_memory(read_bytes(kAudioDir / "format_flac.flac"), "format_flac.flac");
  EXPECT_EQ(from_memory.sample_rate, from_file.sample_rate);
  EXPECT_EQ(from_memory.source_channels, from_file.source_channels);
  EXPECT_EQ(from_memory.samples, from_file.samples);
  EXPECT_EQ(from_file.samples.size(), 4000u);
}

TEST(AudioBadInput, DurationLimitIsEnforced) {
  AudioDecodeOptions options;
  options.max_duration_s = 0.5;  // tone_440.wav lasts 1 s
  try {
    decode_audio_file(kAudioDir / "tone_440.wav", options);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& error) {
    expect_one_line_naming(error.what(), "tone_440.wav", "over the limit of");
  }
}

TEST(AudioBadInput, FeaturesRejectNanAndEmpty) {
  const AudioFeatureConfig config;
  std::vector<float> samples(1600, 0.1f);
  samples[7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(extract_audio_features(samples, config), std::invalid_argument);
  samples[7] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(extract_audio_features(samples, config), std::invalid_argument);
  EXPECT_THROW(extract_audio_features(std::vector<float>{}, config), std::invalid_argument);
}

TEST(AudioBadInput, ResampleRejectsBadRates) {
  const std::vector<float> samples(100, 0.0f);
  EXPECT_THROW(resample_audio(samples, 0, 16000), std::invalid_argument);
  EXPECT_THROW(resample_audio(samples, 44100, -1), std::invalid_argument);
}

}  // namespace
}  // namespace mxgemma
