#include "media/audio_features.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <numbers>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace mxgemma {
namespace {

double hertz_to_mel_htk(double hertz) { return 2595.0 * std::log10(1.0 + hertz / 700.0); }

double mel_to_hertz_htk(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }

// A periodic Hann window computed in double and rounded to float, as transformers'
// window_function(...).astype(float32) does. mlx-vlm evaluates the cosine in float32 instead,
// which moves some values by one float32 ulp; transformers is followed here.
std::vector<float> periodic_hann_window(int length) {
  std::vector<float> window(static_cast<size_t>(length));
  for (int n = 0; n < length; ++n) {
    window[n] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * n / length));
  }
  return window;
}

// FFTW plans are created under a lock because the planner is not thread-safe; executing a plan
// on new arrays (fftw_execute_dft_r2c) is.
class RealFftPlan {
 public:
  explicit RealFftPlan(int length) : length_(length) {
    std::lock_guard<std::mutex> lock(planner_mutex());
    double* in = fftw_alloc_real(length);
    fftw_complex* out = fftw_alloc_complex(length / 2 + 1);
    plan_ = fftw_plan_dft_r2c_1d(length, in, out, FFTW_ESTIMATE);
    fftw_free(in);
    fftw_free(out);
    if (plan_ == nullptr) {
      throw std::runtime_error("extract_audio_features: FFTW could not plan an rfft of length " +
                               std::to_string(length));
    }
  }
  ~RealFftPlan() {
    std::lock_guard<std::mutex> lock(planner_mutex());
    fftw_destroy_plan(plan_);
  }
  RealFftPlan(const RealFftPlan&) = delete;
  RealFftPlan& operator=(const RealFftPlan&) = delete;

  // `in` has length_ values, `out` length_ / 2 + 1; both from fftw_alloc_* for alignment.
  void execute(double* in, fftw_complex* out) const { fftw_execute_dft_r2c(plan_, in, out); }

 private:
  static std::mutex& planner_mutex() {
    static std::mutex mutex;
    return mutex;
  }
  int length_;
  fftw_plan plan_ = nullptr;
};

struct FftwDeleter {
  void operator()(void* p) const { fftw_free(p); }
};

template <typename T>
T read_number(const nlohmann::json& section, const char* key, T fallback,
              const std::string& file) {
  auto it = section.find(key);
  if (it == section.end() || it->is_null()) return fallback;
  if (!it->is_number()) {
    throw std::runtime_error(file + ": field " + key + " must be a number, found " + it->dump());
  }
  return it->get<T>();
}

std::optional<std::vector<double>> read_per_bin(const nlohmann::json& section, const char* key,
                                                const std::string& file) {
  auto it = section.find(key);
  if (it == section.end() || it->is_null()) return std::nullopt;
  if (!it->is_array()) throw std::runtime_error(file + ": field " + key + " must be an array");
  std::vector<double> values;
  for (const auto& value : *it) {
    if (!value.is_number()) throw std::runtime_error(file + ": field " + key + " has a non-number");
    values.push_back(value.get<double>());
  }
  return values;
}

}  // namespace

int AudioFeatureConfig::frame_length() const {
  return static_cast<int>(std::lround(sampling_rate * frame_length_ms / 1000.0));
}

int AudioFeatureConfig::hop_length() const {
  return static_cast<int>(std::lround(sampling_rate * hop_length_ms / 1000.0));
}

int AudioFeatureConfig::fft_length() const {
  int length = 1;
  while (length < frame_length()) length *= 2;
  return fft_overdrive ? 2 * length : length;
}

void validate_audio_feature_config(const AudioFeatureConfig& config) {
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("audio feature config: " + what);
  };
  if (config.feature_size <= 0) fail("feature_size must be positive");
  if (config.sampling_rate <= 0) fail("sampling_rate must be positive");
  if (config.frame_length() < 2) fail("frame_length_ms gives a frame under 2 samples");
  if (config.hop_length() < 1) fail("hop_length_ms gives a hop under 1 sample");
  if (config.fft_length() > (1 << 16)) fail("fft_length over 65536 samples");
  if (config.min_frequency < 0 || config.max_frequency <= config.min_frequency ||
      config.max_frequency > config.sampling_rate / 2.0) {
    fail("min_frequency/max_frequency must satisfy 0 <= min < max <= sampling_rate / 2");
  }
  if (!(config.mel_floor > 0)) fail("mel_floor must be positive");
  if (config.preemphasis < 0 || config.preemphasis >= 1) fail("preemphasis must be in [0, 1)");
  if (config.dither != 0.0) {
    fail("dither must be 0: the reference adds unseeded Gaussian noise, which no test can match");
  }
  if (config.max_length <= 0) fail("max_length must be positive");
  if (config.pad_to_multiple_of <= 0) fail("pad_to_multiple_of must be positive");
  if (config.audio_seq_length <= 0) fail("audio_seq_length must be positive");
  for (const auto* bins : {&config.per_bin_mean, &config.per_bin_stddev}) {
    if (bins->has_value() && static_cast<int>((*bins)->size()) != config.feature_size) {
      fail("per_bin_mean/per_bin_stddev must have feature_size values");
    }
  }
}

AudioFeatureConfig load_audio_feature_config(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream stream(path);
  if (!stream) throw std::runtime_error(file + ": cannot open the processor config");
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(stream);
  } catch (const nlohmann::json::parse_error& error) {
    throw std::runtime_error(file + ": invalid JSON: " + error.what());
  }
  if (!root.is_object()) throw std::runtime_error(file + ": top level must be an object");

  // processor_config.json nests the extractor; preprocessor_config.json is flat.
  const nlohmann::json* section = &root;
  if (auto it = root.find("feature_extractor"); it != root.end()) {
    if (!it->is_object()) throw std::runtime_error(file + ": field feature_extractor must be an object");
    section = &*it;
  }

  AudioFeatureConfig config;
  const auto& s = *section;
  config.feature_size = read_number(s, "feature_size", config.feature_size, file);
  config.sampling_rate = read_number(s, "sampling_rate", config.sampling_rate, file);
  config.frame_length_ms = read_number(s, "frame_length_ms", config.frame_length_ms, file);
  config.hop_length_ms = read_number(s, "hop_length_ms", config.hop_length_ms, file);
  config.min_frequency = read_number(s, "min_frequency", config.min_frequency, file);
  config.max_frequency = read_number(s, "max_frequency", config.max_frequency, file);
  config.preemphasis = read_number(s, "preemphasis", config.preemphasis, file);
  config.dither = read_number(s, "dither", config.dither, file);
  config.input_scale_factor = read_number(s, "input_scale_factor", config.input_scale_factor, file);
  config.mel_floor = read_number(s, "mel_floor", config.mel_floor, file);
  config.padding_value = read_number(s, "padding_value", config.padding_value, file);
  if (auto it = s.find("preemphasis_htk_flavor"); it != s.end() && !it->is_null()) {
    if (!it->is_boolean()) throw std::runtime_error(file + ": field preemphasis_htk_flavor must be a boolean");
    config.preemphasis_htk_flavor = it->get<bool>();
  }
  if (auto it = s.find("fft_overdrive"); it != s.end() && !it->is_null()) {
    if (!it->is_boolean()) throw std::runtime_error(file + ": field fft_overdrive must be a boolean");
    config.fft_overdrive = it->get<bool>();
  }
  if (auto it = s.find("padding_side"); it != s.end() && *it != "right") {
    throw std::runtime_error(file + ": field padding_side must be \"right\", found " + it->dump());
  }
  config.per_bin_mean = read_per_bin(s, "per_bin_mean", file);
  config.per_bin_stddev = read_per_bin(s, "per_bin_stddev", file);
  config.audio_seq_length = read_number(root, "audio_seq_length", config.audio_seq_length, file);
  config.audio_ms_per_token = read_number(root, "audio_ms_per_token", config.audio_ms_per_token, file);

  // The frame and hop lengths are derived from the *_ms fields; a file that also lists them in
  // samples must agree.
  const int frame_length = read_number(s, "frame_length", config.frame_length(), file);
  const int hop_length = read_number(s, "hop_length", config.hop_length(), file);
  const int fft_length = read_number(s, "fft_length", config.fft_length(), file);
  if (frame_length != config.frame_length() || hop_length != config.hop_length() ||
      fft_length != config.fft_length()) {
    throw std::runtime_error(file + ": frame_length/hop_length/fft_length (" +
                             std::to_string(frame_length) + "/" + std::to_string(hop_length) + "/" +
                             std::to_string(fft_length) + ") disagree with the values derived " +
                             "from sampling_rate, frame_length_ms and hop_length_ms");
  }
  try {
    validate_audio_feature_config(config);
  } catch (const std::invalid_argument& error) {
    throw std::runtime_error(file + ": " + error.what());
  }
  return config;
}

std::vector<double> htk_mel_filter_bank(const AudioFeatureConfig& config) {
  const int num_bins = config.fft_length() / 2 + 1;
  const int num_filters = config.feature_size;

  // Filter edges: num_filters + 2 points evenly spaced in HTK mel between the band limits.
  const double mel_min = hertz_to_mel_htk(config.min_frequency);
  const double mel_max = hertz_to_mel_htk(config.max_frequency);
  std::vector<double> edges(static_cast<size_t>(num_filters) + 2);
  for (int i = 0; i < num_filters + 2; ++i) {
    // np.linspace: start + i * step, with the last point set to stop exactly.
    const double step = (mel_max - mel_min) / (num_filters + 1);
    const double mel = (i == num_filters + 1) ? mel_max : mel_min + i * step;
    edges[i] = mel_to_hertz_htk(mel);
  }

  // Bin frequencies: np.linspace(0, sampling_rate // 2, num_bins).
  const double nyquist = static_cast<double>(config.sampling_rate / 2);
  std::vector<double> bin_hz(static_cast<size_t>(num_bins));
  for (int k = 0; k < num_bins; ++k) {
    bin_hz[k] = (k == num_bins - 1) ? nyquist : k * (nyquist / (num_bins - 1));
  }

  std::vector<double> filters(static_cast<size_t>(num_bins) * num_filters, 0.0);
  for (int k = 0; k < num_bins; ++k) {
    for (int m = 0; m < num_filters; ++m) {
      const double rising = (bin_hz[k] - edges[m]) / (edges[m + 1] - edges[m]);
      const double falling = (edges[m + 2] - bin_hz[k]) / (edges[m + 2] - edges[m + 1]);
      filters[static_cast<size_t>(k) * num_filters + m] =
          std::max(0.0, std::min(rising, falling));
    }
  }
  return filters;
}

AudioFeatures extract_audio_features(std::span<const float> samples,
                                     const AudioFeatureConfig& config) {
  validate_audio_feature_config(config);
  if (samples.empty()) throw std::invalid_argument("extract_audio_features: the clip is empty");
  for (size_t i = 0; i < samples.size(); ++i) {
    if (!std::isfinite(samples[i])) {
      throw std::invalid_argument("extract_audio_features: sample " + std::to_string(i) +
                                  " is not finite");
    }
  }

  const int frame_length = config.frame_length();
  const int hop = config.hop_length();
  const int fft_length = config.fft_length();
  const int num_bins = fft_length / 2 + 1;
  const int mels = config.feature_size;
  const int64_t multiple = config.pad_to_multiple_of;

  // Truncation keeps max_length samples, max_length first rounded up to pad_to_multiple_of as
  // transformers' SequenceFeatureExtractor does. The single clip is then zero-padded to the next
  // multiple of pad_to_multiple_of.
  const int64_t max_length = (config.max_length + multiple - 1) / multiple * multiple;
  const int64_t real_length = std::min<int64_t>(static_cast<int64_t>(samples.size()), max_length);
  const int64_t padded_length = (real_length + multiple - 1) / multiple * multiple;

  // Semicausal padding puts frame_length / 2 zeros in front so the first frame centres on t = 0.
  // Each frame reads frame_length + 1 samples; the extra one feeds the pre-emphasis.
  const int64_t pad_left = frame_length / 2;
  const int64_t window_span = frame_length + 1;
  const int64_t total_length = padded_length + pad_left;
  const int64_t num_frames =
      total_length < window_span ? 0 : (total_length - window_span) / hop + 1;

  // The waveform in float32 as the reference holds it, with the left and right padding.
  std::vector<float> waveform(static_cast<size_t>(total_length), 0.0f);
  const auto scale = static_cast<float>(config.input_scale_factor);
  for (int64_t i = 0; i < padded_length; ++i) {
    const float value = i < real_length ? samples[i] : static_cast<float>(config.padding_value);
    waveform[pad_left + i] = config.input_scale_factor != 1.0 ? value * scale : value;
  }

  const std::vector<float> window = periodic_hann_window(frame_length);
  const std::vector<double> filters = htk_mel_filter_bank(config);
  // Each triangular filter is non-zero over a few bins only: keep its range, so a frame costs
  // about 2 * num_bins products instead of num_bins * mels. Skipping exact zeros leaves every
  // sum unchanged.
  std::vector<int> first_bin(static_cast<size_t>(mels), num_bins), end_bin(static_cast<size_t>(mels), 0);
  for (int k = 0; k < num_bins; ++k) {
    for (int m = 0; m < mels; ++m) {
      if (filters[static_cast<size_t>(k) * mels + m] == 0.0) continue;
      first_bin[m] = std::min(first_bin[m], k);
      end_bin[m] = k + 1;
    }
  }
  const RealFftPlan plan(fft_length);
  std::unique_ptr<double, FftwDeleter> fft_in(fftw_alloc_real(fft_length));
  std::unique_ptr<fftw_complex, FftwDeleter> fft_out(fftw_alloc_complex(num_bins));
  if (!fft_in || !fft_out) throw std::bad_alloc();

  AudioFeatures features;
  features.num_frames = static_cast<int>(num_frames);
  features.feature_size = mels;
  features.input_features.assign(static_cast<size_t>(num_frames) * mels, 0.0f);
  features.input_features_mask.assign(static_cast<size_t>(num_frames), 0);

  const auto preemphasis = static_cast<float>(config.preemphasis);
  std::vector<double> magnitude(static_cast<size_t>(num_bins));
  std::vector<float> frame(static_cast<size_t>(frame_length));
  for (int64_t f = 0; f < num_frames; ++f) {
    // A frame is valid when the last sample of its window is real audio, not padding. Invalid
    // frames stay 0 because the reference multiplies them by the mask.
    const int64_t last_sample = f * hop + window_span - 1 - pad_left;
    const bool valid = last_sample >= 0 && last_sample < real_length;
    if (!valid) continue;
    features.input_features_mask[f] = 1;
    ++features.num_valid_frames;

    // Frame samples in float32 arithmetic like the reference, so that only the FFT differs.
    const float* span = waveform.data() + f * hop;
    if (preemphasis > 0.0f) {
      if (config.preemphasis_htk_flavor) {
        frame[0] = span[0] * (1.0f - preemphasis);
        for (int n = 1; n < frame_length; ++n) frame[n] = span[n] - preemphasis * span[n - 1];
      } else {
        for (int n = 0; n < frame_length; ++n) frame[n] = span[n + 1] - preemphasis * span[n];
      }
    } else {
      std::copy(span, span + frame_length, frame.begin());
    }
    double* in = fft_in.get();
    for (int n = 0; n < frame_length; ++n) in[n] = static_cast<double>(frame[n] * window[n]);
    std::fill(in + frame_length, in + fft_length, 0.0);

    // NOTE: the reference's numpy rfft takes float32 frames. The oracle measured it within 1e-6
    // of a float64 rfft in the log-mel values, and the tests bound the difference to this one.
    plan.execute(in, fft_out.get());
    for (int k = 0; k < num_bins; ++k) {
      magnitude[k] = std::hypot(fft_out.get()[k][0], fft_out.get()[k][1]);
    }

    float* row = features.input_features.data() + f * mels;
    for (int m = 0; m < mels; ++m) {
      double mel = 0.0;
      for (int k = first_bin[m]; k < end_bin[m]; ++k) mel += magnitude[k] * filters[static_cast<size_t>(k) * mels + m];
      double value = std::log(mel + config.mel_floor);
      if (config.per_bin_mean) value -= (*config.per_bin_mean)[m];
      if (config.per_bin_stddev) value /= (*config.per_bin_stddev)[m];
      row[m] = static_cast<float>(value);
    }
  }
  return features;
}

int audio_soft_token_count(const AudioFeatures& features, const AudioFeatureConfig& config) {
  // Each stride-2 convolution (kernel 3, padding 1) keeps every other frame of the mask:
  // t_out = (t + 2 - 3) / 2 + 1.
  std::vector<uint8_t> mask = features.input_features_mask;
  for (int layer = 0; layer < 2; ++layer) {
    std::vector<uint8_t> kept;
    kept.reserve(mask.size() / 2 + 1);
    for (size_t i = 0; i < mask.size(); i += 2) kept.push_back(mask[i]);
    mask = std::move(kept);
  }
  const auto count = static_cast<int>(std::count(mask.begin(), mask.end(), uint8_t{1}));
  return std::min(count, config.audio_seq_length);
}

}  // namespace mxgemma
