// Image and audio content parts of OpenAI requests: where their bytes come from (a data URL,
// base64, a local file or a remote URL) and the checks made before the media encoder reads them.
// Every failure throws ApiError (400) naming the request part.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/media_prompt.h"

namespace mxgemma::server {

// One image or audio part as the request gave it, before its bytes are loaded.
struct MediaPart {
  MediaInput::Kind kind = MediaInput::Kind::image;
  std::string param;   // the request part that contains the source, e.g. messages[1].content[0].image_url.url
  std::string source;  // image: the URL; audio: base64 or a data URL
  std::string audio_format;  // wav, mp3 or flac
};

// The policy for image URLs and part sizes: which URL schemes are read, and the size limit of one part.
struct MediaSourcePolicy {
  bool allow_local_files = false;     // file:// URLs
  bool allow_remote_images = false;   // http:// and https:// URLs
  size_t max_bytes = size_t{20} << 20;  // one decoded or fetched file
  double fetch_timeout_seconds = 10.0;  // connect, and then each read, of a remote fetch
};

// "20 MiB" for whole mebibytes, else "100000 bytes": a size limit as error messages show it.
std::string format_bytes_limit(size_t bytes);

// Decodes standard base64 (RFC 4648, padding optional, whitespace skipped). Throws ApiError naming
// `param` on any other character or a truncated final group.
std::vector<uint8_t> decode_base64(std::string_view text, const std::string& param);

// The bytes of one part, named by its request part for the encoder's errors. Throws ApiError (400)
// naming the part for an unsupported or malformed source, a source the policy disallows, a file or
// fetch that fails, or one larger than policy.max_bytes.
MediaInput load_media_part(const MediaPart& part, const MediaSourcePolicy& policy);

// Splits a clip into the fewest consecutive windows of at most `max_window` samples, of equal length
// (within one sample), so no window is a sliver too short for the audio tower.
std::vector<std::vector<float>> split_audio_windows(const std::vector<float>& samples, size_t max_window);

}  // namespace mxgemma::server
