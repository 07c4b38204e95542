#include "server/media_parts.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include <httplib.h>

#include "server/request.h"

namespace mxgemma::server {
namespace {

constexpr std::string_view kImageTypes = "image/png, image/jpeg, image/webp, image/gif or image/bmp";

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); });
}

std::string lowercase(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

// A data URL (RFC 2397) split into its media type and base64 payload.
struct DataUrl {
  std::string media_type;
  std::string_view payload;
};

DataUrl parse_data_url(std::string_view url, const std::string& param) {
  const size_t comma = url.find(',');
  if (comma == std::string_view::npos) {
    fail_invalid(param, "invalid_value", param + ": invalid data URL: no ',' before the data");
  }
  const std::string header = lowercase(url.substr(5, comma - 5));  // after "data:"
  const size_t base64_marker = header.rfind(";base64");
  if (base64_marker == std::string::npos || base64_marker + 7 != header.size()) {
    fail_invalid(param, "invalid_value", param + ": the data URL must be base64-encoded (data:<type>;base64,...)");
  }
  DataUrl parsed;
  parsed.media_type = header.substr(0, std::min(header.find(';'), base64_marker));
  parsed.payload = url.substr(comma + 1);
  return parsed;
}

std::vector<uint8_t> checked_base64(std::string_view text, const std::string& param, const MediaSourcePolicy& policy) {
  // Three bytes per four characters: reject before decoding what would exceed the limit.
  if (text.size() / 4 * 3 > policy.max_bytes) {
    fail_invalid(param, "file_too_large", param + ": the data is larger than the limit of " + format_bytes_limit(policy.max_bytes) + " per file");
  }
  std::vector<uint8_t> bytes = decode_base64(text, param);
  if (bytes.empty()) fail_invalid(param, "invalid_value", param + ": the data is empty");
  return bytes;
}

std::vector<uint8_t> image_from_data_url(std::string_view url, const std::string& param, const MediaSourcePolicy& policy) {
  const DataUrl data = parse_data_url(url, param);
  static constexpr std::array<std::string_view, 6> kAccepted = {"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif", "image/bmp"};
  if (std::find(kAccepted.begin(), kAccepted.end(), data.media_type) == kAccepted.end()) {
    fail_invalid(param, "unsupported_media_type",
                 param + ": unsupported media type \"" + data.media_type + "\"; expected " + std::string(kImageTypes));
  }
  return checked_base64(data.payload, param, policy);
}

// The path of a file:// URL, with %XX escapes decoded. Only an empty host or "localhost" names
// this machine (RFC 8089).
std::filesystem::path file_url_path(std::string_view url, const std::string& param) {
  std::string_view rest = url.substr(7);  // after "file://"
  if (starts_with_ignoring_case(rest, "localhost/")) rest.remove_prefix(9);
  if (rest.empty() || rest.front() != '/') {
    fail_invalid(param, "invalid_value", param + ": a file URL must hold an absolute path, as file:///path/to/image.png");
  }
  std::string path;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%' && i + 2 < rest.size() && std::isxdigit(static_cast<unsigned char>(rest[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(rest[i + 2]))) {
      path += char(std::stoi(std::string(rest.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      path += rest[i];
    }
  }
  return path;
}

std::vector<uint8_t> read_local_file(std::string_view url, const std::string& param, const MediaSourcePolicy& policy) {
  if (!policy.allow_local_files) {
    fail_invalid(param, "local_files_disabled",
                 param + ": file:// URLs are disabled; start the server with --allow-local-files to read images from its disk");
  }
  const std::filesystem::path path = file_url_path(url, param);
  std::error_code error;
  const bool regular = std::filesystem::is_regular_file(path, error);
  if (!regular) {
    fail_invalid(param, "file_not_found", param + ": " + path.string() + " is not a readable regular file");
  }
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error || size > policy.max_bytes) {
    fail_invalid(param, "file_too_large", param + ": " + path.string() + " is larger than the limit of " + format_bytes_limit(policy.max_bytes) + " per file");
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in && !in.eof()) fail_invalid(param, "file_not_found", param + ": cannot read " + path.string());
  if (bytes.empty()) fail_invalid(param, "invalid_value", param + ": " + path.string() + " is empty");
  return bytes;
}

// Describes a failed fetch in words a client can act on.
std::string describe_fetch_error(httplib::Error error, double timeout_seconds) {
  char timeout[32];
  std::snprintf(timeout, sizeof timeout, "%.1f s", timeout_seconds);
  switch (error) {
    case httplib::Error::Connection: return "cannot connect to the host";
    case httplib::Error::ConnectionTimeout: return std::string("connecting timed out after ") + timeout;
    case httplib::Error::Read: return std::string("reading the response failed or timed out after ") + timeout;
    case httplib::Error::ExceedRedirectCount: return "too many redirects";
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLLoadingCerts:
    case httplib::Error::SSLServerVerification: return "the TLS connection failed (" + httplib::to_string(error) + ")";
    default: return httplib::to_string(error);
  }
}

std::vector<uint8_t> fetch_remote(std::string_view url, const std::string& param, const MediaSourcePolicy& policy) {
  if (!policy.allow_remote_images) {
    fail_invalid(param, "remote_images_disabled",
                 param + ": http(s) image URLs are disabled; start the server with --allow-remote-images to fetch them, "
                         "or send the image as a data:image/...;base64 URL");
  }
  const bool https = starts_with_ignoring_case(url, "https://");
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (https) {
    fail_invalid(param, "unsupported_value", param + ": this build has no TLS support, so https URLs cannot be fetched; send the image as a data URL");
  }
#endif
  const size_t host_begin = https ? 8 : 7;
  const size_t path_begin = url.find('/', host_begin);
  const std::string origin(url.substr(0, path_begin));
  const std::string path = path_begin == std::string_view::npos ? "/" : std::string(url.substr(path_begin));
  if (origin.size() <= host_begin) fail_invalid(param, "invalid_value", param + ": the URL has no host");

  httplib::Client client(origin);
  const auto timeout = std::chrono::duration<double>(policy.fetch_timeout_seconds);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const auto microseconds = std::chrono::duration_cast<std::chrono::microseconds>(timeout - seconds);
  client.set_connection_timeout(time_t(seconds.count()), long(microseconds.count()));
  client.set_read_timeout(time_t(seconds.count()), long(microseconds.count()));
  client.set_follow_location(true);

  std::vector<uint8_t> bytes;
  bool too_large = false;
  const httplib::Result result = client.Get(path.c_str(), [&](const char* data, size_t length) {
    if (bytes.size() + length > policy.max_bytes) {
      too_large = true;
      return false;
    }
    bytes.insert(bytes.end(), data, data + length);
    return true;
  });
  if (too_large) {
    fail_invalid(param, "file_too_large", param + ": the image is larger than the limit of " + format_bytes_limit(policy.max_bytes) + " per file");
  }
  if (!result) {
    fail_invalid(param, "fetch_failed", param + ": fetching the image failed: " + describe_fetch_error(result.error(), policy.fetch_timeout_seconds));
  }
  if (result->status != 200) {
    fail_invalid(param, "fetch_failed", param + ": fetching the image failed: the server returned HTTP " + std::to_string(result->status));
  }
  if (bytes.empty()) fail_invalid(param, "invalid_value", param + ": the fetched image is empty");
  return bytes;
}

std::vector<uint8_t> load_image_bytes(const MediaPart& part, const MediaSourcePolicy& policy) {
  const std::string_view url = part.source;
  if (starts_with_ignoring_case(url, "data:")) return image_from_data_url(url, part.param, policy);
  if (starts_with_ignoring_case(url, "file://")) return read_local_file(url, part.param, policy);
  if (starts_with_ignoring_case(url, "http://") || starts_with_ignoring_case(url, "https://")) {
    return fetch_remote(url, part.param, policy);
  }
  fail_invalid(part.param, "invalid_value",
               part.param + ": expected a data:image/...;base64 URL, a file:// URL or an http(s):// URL");
}

std::vector<uint8_t> load_audio_bytes(const MediaPart& part, const MediaSourcePolicy& policy) {
  static constexpr std::array<std::string_view, 3> kFormats = {"wav", "mp3", "flac"};
  const std::string format_param = part.param.substr(0, part.param.rfind('.')) + ".format";
  if (std::find(kFormats.begin(), kFormats.end(), part.audio_format) == kFormats.end()) {
    fail_invalid(format_param, "unsupported_value",
                 format_param + ": unsupported audio format \"" + part.audio_format + "\"; expected wav, mp3 or flac");
  }
  std::string_view data = part.source;
  // Some clients send a data URL where OpenAI documents bare base64.
  if (starts_with_ignoring_case(data, "data:")) {
    const DataUrl url = parse_data_url(data, part.param);
    if (url.media_type.rfind("audio/", 0) != 0) {
      fail_invalid(part.param, "unsupported_media_type", part.param + ": unsupported media type \"" + url.media_type + "\"; expected audio/...");
    }
    data = url.payload;
  }
  return checked_base64(data, part.param, policy);
}

}  // namespace

std::string format_bytes_limit(size_t bytes) {
  if (bytes % (size_t(1) << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

std::vector<uint8_t> decode_base64(std::string_view text, const std::string& param) {
  std::vector<uint8_t> bytes;
  bytes.reserve(text.size() / 4 * 3);
  uint32_t group = 0;
  int bits = 0;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    int value = -1;
    if (c >= 'A' && c <= 'Z') value = c - 'A';
    else if (c >= 'a' && c <= 'z') value = c - 'a' + 26;
    else if (c >= '0' && c <= '9') value = c - '0' + 52;
    else if (c == '+') value = 62;
    else if (c == '/') value = 63;
    else if (c == '=') {
      ++padding;
      continue;
    }
    if (value < 0 || padding > 0) {
      fail_invalid(param, "invalid_base64", param + ": invalid base64: unexpected character at offset " + std::to_string(i));
    }
    group = (group << 6) | uint32_t(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(uint8_t((group >> bits) & 0xff));
    }
  }
  // A final group of one character carries no whole byte.
  if (bits >= 6 || padding > 2) fail_invalid(param, "invalid_base64", param + ": invalid base64: the data is truncated");
  return bytes;
}

MediaInput load_media_part(const MediaPart& part, const MediaSourcePolicy& policy) {
  MediaInput input;
  input.kind = part.kind;
  input.name = part.param;
  input.bytes = part.kind == MediaInput::Kind::image ? load_image_bytes(part, policy) : load_audio_bytes(part, policy);
  return input;
}

std::vector<std::vector<float>> split_audio_windows(const std::vector<float>& samples, size_t max_window) {
  std::vector<std::vector<float>> windows;
  if (samples.empty() || max_window == 0) return windows;
  const size_t count = (samples.size() + max_window - 1) / max_window;
  const size_t base = samples.size() / count;
  const size_t longer = samples.size() % count;  // the first `longer` windows get one sample more
  size_t begin = 0;
  for (size_t index = 0; index < count; ++index) {
    const size_t end = begin + base + (index < longer ? 1 : 0);
    windows.emplace_back(samples.begin() + std::ptrdiff_t(begin), samples.begin() + std::ptrdiff_t(end));
    begin = end;
  }
  return windows;
}

}  // namespace mxgemma::server
