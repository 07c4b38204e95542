// Images and audio clips in a prompt, shared by the CLI and the server. The chat template writes
// one placeholder per input (`<|image|>` or `<|audio|>`). As in Gemma4Processor, each becomes its
// begin marker, one placeholder token per soft token and its end marker. The towers' soft tokens
// then fill the placeholder positions in the decoder.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "kernels/thread_pool.h"
#include "media/audio_features.h"
#include "media/image_processor.h"
#include "model/gemma4_text.h"

namespace mxgemma {

class Gemma4AudioModel;
class Gemma4VisionModel;

// One image or audio clip of a prompt, in the order its placeholder appears.
struct MediaInput {
  enum class Kind { image, audio };
  Kind kind = Kind::image;
  // The encoded file (JPEG, PNG, WAV, MP3, ...). For audio, `samples` may be given instead:
  // mono samples already at the feature extractor's rate (a window of a longer clip, say).
  std::vector<uint8_t> bytes;
  std::vector<float> samples;
  std::string name;  // names the input in errors: a file path or a request part
};

// A prompt with its media placeholders expanded, and the soft-token rows that fill them.
struct MediaPrompt {
  std::vector<int32_t> tokens;
  int32_t image_token_id = -1;
  int32_t audio_token_id = -1;
  std::vector<float> image_rows;  // [image soft tokens, text hidden], in prompt order
  std::vector<float> audio_rows;  // [audio soft tokens, text hidden], in prompt order
  int images = 0;
  int audio_clips = 0;
  double encode_seconds = 0.0;  // decoding, preprocessing and the towers

  // The soft tokens of tokens[begin, begin + count), for a forward pass over that range alone
  // (a prefill chunk). The spans point into this object.
  std::vector<Gemma4TextModel::SoftTokens> soft_tokens(int64_t begin, int64_t count) const;
  std::vector<Gemma4TextModel::SoftTokens> soft_tokens() const { return soft_tokens(0, int64_t(tokens.size())); }
};

class MediaEncoder {
 public:
  // Reads processor_config.json when the bundle has one; the towers load on first use.
  MediaEncoder(const Bundle& bundle, ThreadPool& pool);
  ~MediaEncoder();
  MediaEncoder(const MediaEncoder&) = delete;
  MediaEncoder& operator=(const MediaEncoder&) = delete;

  // Expands the placeholders of `prompt` with `media`, the i-th image for the i-th `<|image|>`
  // and likewise for audio. Every input is decoded and its soft-token count known before a
  // tower runs, so a prompt that cannot fit `context_size` (with room for one generated token)
  // fails fast. Throws std::invalid_argument naming the input for an undecodable file, a clip
  // over the processor's max_length (30 s) or a bundle without the needed tower. Also throws it
  // for placeholder counts that differ from the input counts, and for a prompt too long for
  // the context.
  MediaPrompt expand(std::span<const int32_t> prompt, std::span<const MediaInput> media, int64_t context_size);

  // The processor's audio settings (defaults when the bundle has no processor_config.json).
  const AudioFeatureConfig& audio_feature_config() const { return audio_features_config_; }

 private:
  Gemma4VisionModel& vision();
  Gemma4AudioModel& audio();

  const Bundle& bundle_;
  ThreadPool& pool_;
  std::optional<ImageProcessorConfig> image_config_;
  AudioFeatureConfig audio_features_config_;
  std::unique_ptr<Gemma4VisionModel> vision_;
  std::unique_ptr<Gemma4AudioModel> audio_;
};

// Throws std::invalid_argument when `prompt` has another count of `placeholder` tokens than the
// `inputs` of `kind`, with both counts in the message.
void check_placeholder_count(std::span<const int32_t> prompt, int32_t placeholder, MediaInput::Kind kind,
                             int64_t inputs);

// The count of `token_id` in `tokens`.
int64_t count_token(std::span<const int32_t> tokens, int32_t token_id);

}  // namespace mxgemma
