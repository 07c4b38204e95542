#include "engine/media_prompt.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "media/audio_decode.h"
#include "media/image.h"
#include "model/gemma4_audio.h"
#include "model/gemma4_vision.h"
#include "util/log.h"

namespace mxgemma {
namespace {

// One input after decoding and preprocessing: what its tower needs, and its soft-token count.
struct PreparedInput {
  const MediaInput* input = nullptr;
  PreprocessedImage image;
  AudioFeatures audio;
  int soft_tokens = 0;
};

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", seconds);
  return text;
}

// "1 image", "3 images"
std::string count_of(int64_t count, const std::string& singular, const std::string& plural) {
  return std::to_string(count) + " " + (count == 1 ? singular : plural);
}

// Runs one stage on an input, and puts the input's name in front of an error that lacks it, such as
// a tower's "the clip has no valid frames".
template <typename Stage>
auto naming_input(const MediaInput& input, Stage&& stage) -> decltype(stage()) {
  try {
    return stage();
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    if (message.find(input.name) != std::string::npos) throw;
    throw std::invalid_argument(input.name + ": " + message);
  }
}

// Loads a tower on first use, so text-only requests never read its weights.
template <typename Tower>
Tower& load_tower(std::unique_ptr<Tower>& tower, const char* kind, const Bundle& bundle, ThreadPool& pool) {
  if (!tower) {
    const auto start = std::chrono::steady_clock::now();
    tower = std::make_unique<Tower>(bundle, pool);
    MXG_LOG_DEBUG("%s tower loaded in %.2f s", kind,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return *tower;
}

}  // namespace

int64_t count_token(std::span<const int32_t> tokens, int32_t token_id) {
  return std::count(tokens.begin(), tokens.end(), token_id);
}

void check_placeholder_count(std::span<const int32_t> prompt, int32_t placeholder, MediaInput::Kind kind,
                             int64_t inputs) {
  const int64_t placeholders = count_token(prompt, placeholder);
  if (placeholders == inputs) return;
  if (kind == MediaInput::Kind::image) {
    throw std::invalid_argument("the prompt has " + count_of(placeholders, "image placeholder", "image placeholders") +
                                " (<|image|>) for " + count_of(inputs, "image", "images"));
  }
  throw std::invalid_argument("the prompt has " + count_of(placeholders, "audio placeholder", "audio placeholders") +
                              " (<|audio|>) for " + count_of(inputs, "audio clip", "audio clips"));
}

std::vector<Gemma4TextModel::SoftTokens> MediaPrompt::soft_tokens(int64_t begin, int64_t count) const {
  const std::span<const int32_t> all(tokens);
  const std::span<const int32_t> before = all.first(size_t(begin));
  const std::span<const int32_t> range = all.subspan(size_t(begin), size_t(count));
  std::vector<Gemma4TextModel::SoftTokens> result;
  auto add = [&](int32_t token_id, const std::vector<float>& rows, int inputs) {
    if (inputs == 0) return;
    const int64_t total = count_token(all, token_id);
    const size_t hidden = total > 0 ? rows.size() / size_t(total) : 0;
    const size_t first = size_t(count_token(before, token_id)) * hidden;
    const size_t length = size_t(count_token(range, token_id)) * hidden;
    result.push_back({token_id, std::span<const float>(rows).subspan(first, length)});
  };
  add(image_token_id, image_rows, images);
  add(audio_token_id, audio_rows, audio_clips);
  return result;
}

MediaEncoder::MediaEncoder(const Bundle& bundle, ThreadPool& pool) : bundle_(bundle), pool_(pool) {
  const std::filesystem::path processor = bundle.dir() / "processor_config.json";
  if (std::filesystem::exists(processor)) {
    if (bundle.config().vision) image_config_ = load_image_processor_config(processor);
    if (bundle.config().audio) audio_features_config_ = load_audio_feature_config(processor);
  }
}

MediaEncoder::~MediaEncoder() = default;

Gemma4VisionModel& MediaEncoder::vision() { return load_tower(vision_, "vision", bundle_, pool_); }

Gemma4AudioModel& MediaEncoder::audio() { return load_tower(audio_, "audio", bundle_, pool_); }

MediaPrompt MediaEncoder::expand(std::span<const int32_t> prompt, std::span<const MediaInput> media,
                                 int64_t context_size) {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig& config = bundle_.config();
  MediaPrompt result;
  result.image_token_id = config.image_token_id;
  result.audio_token_id = config.audio_token_id;

  // Decode and preprocess everything first: the soft-token counts decide whether the prompt fits.
  std::vector<PreparedInput> prepared;
  prepared.reserve(media.size());
  int64_t soft_total = 0;
  for (const MediaInput& input : media) {
    PreparedInput item;
    item.input = &input;
    if (input.kind == MediaInput::Kind::image) {
      if (!config.vision) {
        throw std::invalid_argument(input.name + ": this bundle has no vision tower (config.json has no vision_config)");
      }
      if (!image_config_) {
        throw std::invalid_argument(input.name + ": the bundle has no processor_config.json, which sets how images are sized");
      }
      item.image = naming_input(input, [&] { return preprocess_image(decode_image(input.bytes, input.name), *image_config_); });
      item.soft_tokens = item.image.num_soft_tokens;
      ++result.images;
    } else {
      if (!config.audio) {
        throw std::invalid_argument(input.name + ": this bundle has no audio tower (config.json has no audio_config)");
      }
      const AudioFeatureConfig& features = audio_features_config_;
      std::vector<float> samples = input.samples;
      if (samples.empty()) {
        samples = naming_input(input, [&] {
          const DecodedAudio decoded = decode_audio_memory(input.bytes, input.name);
          return resample_audio(decoded.samples, decoded.sample_rate, features.sampling_rate);
        });
      }
      if (int64_t(samples.size()) > features.max_length) {
        // The reference truncates silently; losing the rest of a clip is refused here instead.
        throw std::invalid_argument(
            input.name + ": the clip is " + format_seconds(double(samples.size()) / features.sampling_rate) +
            " long; one audio input holds at most " + format_seconds(double(features.max_length) / features.sampling_rate) +
            " (" + std::to_string(features.audio_seq_length) + " soft tokens); split it into shorter clips");
      }
      item.audio = naming_input(input, [&] { return extract_audio_features(samples, features); });
      item.soft_tokens = audio_soft_token_count(item.audio, features);
      if (item.soft_tokens == 0) {
        throw std::invalid_argument(input.name + ": the clip is " +
                                    std::to_string(int64_t(samples.size()) * 1000 / features.sampling_rate) +
                                    " ms long, too short for one audio token (one 20 ms frame at least)");
      }
      ++result.audio_clips;
    }
    soft_total += item.soft_tokens;
    prepared.push_back(std::move(item));
  }

  check_placeholder_count(prompt, config.image_token_id, MediaInput::Kind::image, result.images);
  check_placeholder_count(prompt, config.audio_token_id, MediaInput::Kind::audio, result.audio_clips);
  // Each placeholder becomes begin marker + soft tokens + end marker.
  const int64_t expanded = int64_t(prompt.size()) + soft_total + int64_t(media.size());
  if (expanded >= context_size) {
    throw std::invalid_argument("the prompt with " + count_of(result.images, "image", "images") + " and " +
                                count_of(result.audio_clips, "audio clip", "audio clips") + " is " + std::to_string(expanded) +
                                " tokens (" + std::to_string(soft_total) + " of them soft tokens), which does not fit the context size of " +
                                std::to_string(context_size) + " tokens; send fewer or smaller inputs or raise --ctx-size");
  }

  result.tokens.reserve(size_t(expanded));
  size_t next_image = 0, next_audio = 0;
  std::vector<const PreparedInput*> image_order, audio_order;
  for (const PreparedInput& item : prepared) {
    (item.input->kind == MediaInput::Kind::image ? image_order : audio_order).push_back(&item);
  }
  for (const int32_t token : prompt) {
    if (token == config.image_token_id) {
      const PreparedInput& item = *image_order[next_image++];
      result.tokens.push_back(config.boi_token_id);
      result.tokens.insert(result.tokens.end(), size_t(item.soft_tokens), config.image_token_id);
      result.tokens.push_back(config.eoi_token_id);
    } else if (token == config.audio_token_id) {
      const PreparedInput& item = *audio_order[next_audio++];
      result.tokens.push_back(config.boa_token_id);
      result.tokens.insert(result.tokens.end(), size_t(item.soft_tokens), config.audio_token_id);
      result.tokens.push_back(config.eoa_token_id);
    } else {
      result.tokens.push_back(token);
    }
  }

  for (const PreparedInput* item : image_order) {
    const std::vector<float> rows =
        naming_input(*item->input, [&] { return vision().encode_image(item->image.pixel_values, item->image.positions); });
    result.image_rows.insert(result.image_rows.end(), rows.begin(), rows.end());
  }
  for (const PreparedInput* item : audio_order) {
    const std::vector<float> rows = naming_input(*item->input, [&] { return audio().encode_audio(item->audio); });
    result.audio_rows.insert(result.audio_rows.end(), rows.begin(), rows.end());
  }
  result.encode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace mxgemma
