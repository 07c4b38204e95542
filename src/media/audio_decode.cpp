#include "media/audio_decode.h"

#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace mxgemma {
namespace {

constexpr sf_count_t kReadBlockFrames = 16384;

[[noreturn]] void throw_audio_error(const std::string& name, const std::string& what) {
  throw std::invalid_argument("audio file " + name + ": " + what);
}

// A read-only byte buffer behind libsndfile's virtual I/O.
struct MemoryStream {
  std::span<const uint8_t> bytes;
  sf_count_t position = 0;
};

sf_count_t memory_get_filelen(void* user) {
  return static_cast<sf_count_t>(static_cast<MemoryStream*>(user)->bytes.size());
}

sf_count_t memory_seek(sf_count_t offset, int whence, void* user) {
  auto* stream = static_cast<MemoryStream*>(user);
  const auto size = static_cast<sf_count_t>(stream->bytes.size());
  sf_count_t base = 0;
  if (whence == SEEK_CUR) base = stream->position;
  if (whence == SEEK_END) base = size;
  const sf_count_t target = base + offset;
  if (target < 0 || target > size) return -1;
  stream->position = target;
  return target;
}

sf_count_t memory_read(void* destination, sf_count_t count, void* user) {
  auto* stream = static_cast<MemoryStream*>(user);
  const auto size = static_cast<sf_count_t>(stream->bytes.size());
  const sf_count_t available = std::max<sf_count_t>(0, size - stream->position);
  const sf_count_t n = std::min(count, available);
  if (n > 0) std::memcpy(destination, stream->bytes.data() + stream->position, n);
  stream->position += n;
  return n;
}

sf_count_t memory_write(const void*, sf_count_t, void*) { return 0; }

sf_count_t memory_tell(void* user) { return static_cast<MemoryStream*>(user)->position; }

struct SndfileCloser {
  void operator()(SNDFILE* file) const { sf_close(file); }
};
using SndfileHandle = std::unique_ptr<SNDFILE, SndfileCloser>;

// libsndfile shortens a WAV data chunk that runs past the end of the file instead of failing, and
// only its log shows it, as a line "data : <header size> (should be <real size>)" (libsndfile
// 1.2.0). Returns that line's two sizes, or an empty string for a consistent file.
std::string data_chunk_mismatch(SNDFILE* file) {
  std::string log(8192, '\0');
  sf_command(file, SFC_GET_LOG_INFO, log.data(), static_cast<int>(log.size()));
  log.resize(log.find('\0'));
  size_t line_start = 0;
  while (line_start < log.size()) {
    size_t line_end = log.find('\n', line_start);
    if (line_end == std::string::npos) line_end = log.size();
    const std::string line = log.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (line.rfind("data", 0) != 0) continue;
    long long claimed = 0;
    long long actual = 0;
    if (std::sscanf(line.c_str(), "data : %lld (should be %lld)", &claimed, &actual) == 2) {
      return "the data chunk header claims " + std::to_string(claimed) +
             " bytes but the file holds " + std::to_string(actual);
    }
  }
  return "";
}

DecodedAudio read_and_mix(SNDFILE* file, const SF_INFO& info, const std::string& name,
                          const AudioDecodeOptions& options) {
  if (info.channels <= 0 || info.samplerate <= 0) {
    throw_audio_error(name, "invalid header: " + std::to_string(info.channels) + " channels at " +
                                std::to_string(info.samplerate) + " Hz");
  }
  const double max_frames = options.max_duration_s * info.samplerate;
  if (static_cast<double>(info.frames) > max_frames) {
    throw_audio_error(name, "header claims " + std::to_string(info.frames) + " frames (" +
                                std::to_string(info.frames / info.samplerate) +
                                " s), over the limit of " +
                                std::to_string(static_cast<long long>(options.max_duration_s)) +
                                " s");
  }
  if (info.frames == 0) throw_audio_error(name, "contains no audio frames");
  if (const std::string mismatch = data_chunk_mismatch(file); !mismatch.empty()) {
    throw_audio_error(name, "truncated: " + mismatch);
  }

  DecodedAudio audio;
  audio.sample_rate = info.samplerate;
  audio.source_channels = info.channels;
  // Reserve only what the header claims, which is already bounded by max_duration_s.
  audio.samples.reserve(static_cast<size_t>(info.frames));

  const int channels = info.channels;
  std::vector<float> block(static_cast<size_t>(kReadBlockFrames) * channels);
  sf_count_t total_frames = 0;
  while (true) {
    const sf_count_t got = sf_readf_float(file, block.data(), kReadBlockFrames);
    if (got <= 0) break;
    total_frames += got;
    if (static_cast<double>(total_frames) > max_frames) {
      throw_audio_error(name, "longer than the limit of " +
                                  std::to_string(static_cast<long long>(options.max_duration_s)) +
                                  " s");
    }
    for (sf_count_t frame = 0; frame < got; ++frame) {
      // Add the channels in order in float32, then divide, as numpy's float32 mean over the
      // channel axis of a (channels, frames) array does.
      float sum = 0.0f;
      for (int c = 0; c < channels; ++c) {
        const float value = block[static_cast<size_t>(frame) * channels + c];
        if (!std::isfinite(value)) {
          throw_audio_error(name, "sample " + std::to_string(total_frames - got + frame) +
                                      " of channel " + std::to_string(c) + " is not finite");
        }
        sum += value;
      }
      audio.samples.push_back(channels == 1 ? sum : sum / static_cast<float>(channels));
    }
  }

  if (sf_error(file) != SF_ERR_NO_ERROR) {
    throw_audio_error(name, std::string("decoding failed: ") + sf_strerror(file));
  }
  if (total_frames == 0) throw_audio_error(name, "contains no audio frames");
  // A compressed stream (FLAC, Vorbis, MP3) that ends early decodes fewer frames than its header
  // announced.
  if (info.frames != SF_COUNT_MAX && total_frames < info.frames) {
    throw_audio_error(name, "truncated: decoded " + std::to_string(total_frames) + " of " +
                                std::to_string(info.frames) + " frames");
  }
  return audio;
}

}  // namespace

DecodedAudio decode_audio_file(const std::filesystem::path& path,
                               const AudioDecodeOptions& options) {
  const std::string name = path.string();
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) throw_audio_error(name, "cannot be read: " + error.message());
  if (size == 0) throw_audio_error(name, "is empty (0 bytes)");

  SF_INFO info = {};
  SndfileHandle file(sf_open(name.c_str(), SFM_READ, &info));
  if (!file) throw_audio_error(name, std::string("not a readable audio file: ") + sf_strerror(nullptr));
  return read_and_mix(file.get(), info, name, options);
}

DecodedAudio decode_audio_memory(std::span<const uint8_t> bytes, const std::string& name,
                                 const AudioDecodeOptions& options) {
  if (bytes.empty()) throw_audio_error(name, "is empty (0 bytes)");
  MemoryStream stream{bytes, 0};
  SF_VIRTUAL_IO io = {memory_get_filelen, memory_seek, memory_read, memory_write, memory_tell};
  SF_INFO info = {};
  SndfileHandle file(sf_open_virtual(&io, SFM_READ, &info, &stream));
  if (!file) throw_audio_error(name, std::string("not a readable audio file: ") + sf_strerror(nullptr));
  return read_and_mix(file.get(), info, name, options);
}

std::vector<float> resample_audio(std::span<const float> samples, int source_rate,
                                  int target_rate) {
  if (source_rate <= 0 || target_rate <= 0) {
    throw std::invalid_argument("resample_audio: invalid rates " + std::to_string(source_rate) +
                                " -> " + std::to_string(target_rate) + " Hz");
  }
  if (source_rate == target_rate || samples.empty()) {
    return std::vector<float>(samples.begin(), samples.end());
  }

  const double ratio = static_cast<double>(target_rate) / source_rate;
  const auto n_out = static_cast<size_t>(
      (static_cast<int64_t>(samples.size()) * target_rate + source_rate - 1) / source_rate);
  // src_simple with end_of_input flushes the filter tail; a little headroom lets it finish.
  std::vector<float> output(n_out + 64, 0.0f);
  SRC_DATA data = {};
  data.data_in = samples.data();
  data.input_frames = static_cast<long>(samples.size());
  data.data_out = output.data();
  data.output_frames = static_cast<long>(output.size());
  data.src_ratio = ratio;
  data.end_of_input = 1;
  const int status = src_simple(&data, SRC_SINC_BEST_QUALITY, 1);
  if (status != 0) {
    throw std::runtime_error(std::string("resample_audio: libsamplerate failed: ") +
                             src_strerror(status));
  }
  // Pad with zeros or trim to the reference length ceil(n * target / source).
  output.resize(static_cast<size_t>(data.output_frames_gen));
  output.resize(n_out, 0.0f);
  return output;
}

std::vector<float> load_audio_file(const std::filesystem::path& path, int target_rate,
                                   const AudioDecodeOptions& options) {
  DecodedAudio audio = decode_audio_file(path, options);
  return resample_audio(audio.samples, audio.sample_rate, target_rate);
}

}  // namespace mxgemma
