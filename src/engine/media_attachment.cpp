#include "engine/media_attachment.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

namespace mxgemma {

const char* media_kind_name(MediaInput::Kind kind) { return kind == MediaInput::Kind::image ? "image" : "audio"; }

nlohmann::ordered_json media_content_part(MediaInput::Kind kind, const std::string& path) {
  return {{"type", media_kind_name(kind)}, {"path", path}};
}

MediaInput read_media_file(const std::string& path, MediaInput::Kind kind) {
  const std::string label = std::string(media_kind_name(kind)) + " file " + path;
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw std::invalid_argument(label + ": not found");
  if (!std::filesystem::is_regular_file(path, error)) throw std::invalid_argument(label + ": not a regular file");
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::invalid_argument(label + ": cannot be opened for reading");

  MediaInput input;
  input.kind = kind;
  input.name = path;
  input.bytes.assign(std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>());
  if (stream.bad()) throw std::invalid_argument(label + ": read failed");
  return input;
}

MediaAttachment encode_attachment(MediaEncoder& encoder, const ModelConfig& config, const MediaInput& input,
                                  int64_t context_size) {
  // A prompt of the input's placeholder alone expands to exactly the tokens that replace it.
  const bool is_image = input.kind == MediaInput::Kind::image;
  const std::vector<int32_t> placeholder = {is_image ? config.image_token_id : config.audio_token_id};
  MediaPrompt expanded = encoder.expand(placeholder, std::span<const MediaInput>(&input, 1), context_size);

  MediaAttachment attachment;
  attachment.kind = input.kind;
  attachment.name = input.name;
  attachment.tokens = std::move(expanded.tokens);
  attachment.rows = std::move(is_image ? expanded.image_rows : expanded.audio_rows);
  attachment.soft_tokens = int(count_token(attachment.tokens, placeholder[0]));
  attachment.encode_seconds = expanded.encode_seconds;
  return attachment;
}

MediaPrompt splice_attachments(std::span<const int32_t> prompt, std::span<const MediaAttachment> media,
                               const ModelConfig& config) {
  MediaPrompt result;
  result.image_token_id = config.image_token_id;
  result.audio_token_id = config.audio_token_id;
  std::vector<const MediaAttachment*> images, audio_clips;
  for (const MediaAttachment& attachment : media) {
    (attachment.kind == MediaInput::Kind::image ? images : audio_clips).push_back(&attachment);
  }
  result.images = int(images.size());
  result.audio_clips = int(audio_clips.size());

  check_placeholder_count(prompt, config.image_token_id, MediaInput::Kind::image, int64_t(images.size()));
  check_placeholder_count(prompt, config.audio_token_id, MediaInput::Kind::audio, int64_t(audio_clips.size()));

  size_t next_image = 0, next_audio = 0;
  for (const int32_t token : prompt) {
    const MediaAttachment* attachment = nullptr;
    if (token == config.image_token_id && next_image < images.size()) attachment = images[next_image++];
    if (token == config.audio_token_id && next_audio < audio_clips.size()) attachment = audio_clips[next_audio++];
    if (attachment == nullptr) {
      result.tokens.push_back(token);
      continue;
    }
    result.tokens.insert(result.tokens.end(), attachment->tokens.begin(), attachment->tokens.end());
    std::vector<float>& rows = attachment->kind == MediaInput::Kind::image ? result.image_rows : result.audio_rows;
    rows.insert(rows.end(), attachment->rows.begin(), attachment->rows.end());
  }
  return result;
}

}  // namespace mxgemma
