// Images and audio clips attached to a conversation: read from a file, encoded one at a time,
// and spliced into each rendered prompt. `mxgemma chat` re-renders the whole history every turn,
// so an attachment is encoded once and its soft tokens are reused in every later turn.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/config.h"
#include "engine/media_prompt.h"

namespace mxgemma {

// One input after its tower ran: the tokens that replace its placeholder and their soft tokens.
struct MediaAttachment {
  MediaInput::Kind kind = MediaInput::Kind::image;
  std::string name;             // the file path, for logs and errors
  std::vector<int32_t> tokens;  // begin marker, one placeholder per soft token, end marker
  std::vector<float> rows;      // [soft tokens, text hidden]
  int soft_tokens = 0;
  double encode_seconds = 0.0;
};

// "image" or "audio"
const char* media_kind_name(MediaInput::Kind kind);

// The content part of a user message that a chat template renders as the input's placeholder:
// {"type": "image" or "audio", "path": PATH}.
nlohmann::ordered_json media_content_part(MediaInput::Kind kind, const std::string& path);

// Reads `path` into a MediaInput of `kind` named by the path. Only reads the bytes: decoding is
// left to MediaEncoder. Throws std::invalid_argument naming the path when it is missing, not a
// regular file, or unreadable.
MediaInput read_media_file(const std::string& path, MediaInput::Kind kind);

// Runs `input` through `encoder` on its own. Throws what MediaEncoder::expand throws: a
// std::invalid_argument naming the input when it cannot be decoded, is too long, needs a tower
// the bundle lacks, or alone does not fit `context_size`.
MediaAttachment encode_attachment(MediaEncoder& encoder, const ModelConfig& config, const MediaInput& input,
                                  int64_t context_size);

// Replaces the i-th `<|image|>` of `prompt` with the tokens of the i-th image of `media`, and
// likewise for `<|audio|>`, and collects their rows in prompt order. The result is what
// MediaEncoder::expand returns for the same prompt and inputs. Throws std::invalid_argument
// when the placeholder counts differ from the input counts.
MediaPrompt splice_attachments(std::span<const int32_t> prompt, std::span<const MediaAttachment> media,
                               const ModelConfig& config);

}  // namespace mxgemma
