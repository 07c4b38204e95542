// GIF (first frame) and BMP through stb_image, which Debian ships as libstb.
#include <cmath>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include <stb_image.h>

#include "media/image_codecs.h"

namespace mxgemma::media_detail {

namespace {

struct StbFree {
  void operator()(stbi_uc* pixels) const { stbi_image_free(pixels); }
};

[[noreturn]] void fail(const std::string& source_name, const std::string& problem) {
  throw std::invalid_argument("image '" + source_name + "': " + problem);
}

// Skips a chain of GIF data sub-blocks (length byte, data) up to the 0 terminator. Returns the
// position after it, or 0 when the file ends first.
size_t skip_gif_sub_blocks(std::span<const uint8_t> bytes, size_t pos) {
  while (pos < bytes.size()) {
    const size_t length = bytes[pos];
    pos += 1 + length;
    if (length == 0) return pos;
  }
  return 0;
}

// stb_image decodes a GIF whose data ends early without an error, so the block structure up to
// the end of the first image is checked here: PIL raises "image file is truncated" there.
// Returns 0: GIF keeps the channels stb_image gives it.
int check_gif(std::span<const uint8_t> bytes, const std::string& source_name) {
  auto color_table_size = [](uint8_t flags) {
    return (flags & 0x80) != 0 ? size_t{3} << ((flags & 7) + 1) : size_t{0};
  };
  if (bytes.size() < 13) fail(source_name, "invalid GIF: file is truncated");
  size_t pos = 13 + color_table_size(bytes[10]);
  while (pos < bytes.size()) {
    const uint8_t introducer = bytes[pos];
    if (introducer == 0x21) {  // extension: label, then sub-blocks
      pos = pos + 2 > bytes.size() ? 0 : skip_gif_sub_blocks(bytes, pos + 2);
      if (pos == 0) break;
    } else if (introducer == 0x2C) {  // image descriptor (10 bytes), color table, LZW data
      if (pos + 10 > bytes.size()) break;
      pos += 10 + color_table_size(bytes[pos + 9]) + 1;
      if (pos >= bytes.size() || skip_gif_sub_blocks(bytes, pos) == 0) break;
      return 0;
    } else if (introducer == 0x3B) {
      fail(source_name, "invalid GIF: no image before the trailer");
    } else {
      fail(source_name, "invalid GIF: unknown block " + std::to_string(introducer));
    }
  }
  fail(source_name, "invalid GIF: file is truncated");
}

// stb_image fills the missing rows of a short uncompressed BMP with zeros; PIL raises "image
// file is truncated", so the pixel array must fit in the file. Returns the channel count to
// request from stb_image: 3 for 32-bit BI_RGB, whose fourth byte PIL ignores (mode RGB from
// raw mode BGRX) while stb_image would read it as alpha; 0 (as stored) otherwise.
int check_bmp(std::span<const uint8_t> bytes, const std::string& source_name) {
  auto read_le = [&](size_t at, int count) {
    uint32_t value = 0;
    for (int i = count - 1; i >= 0; --i) value = (value << 8) | bytes[at + i];
    return value;
  };
  if (bytes.size() < 26) fail(source_name, "invalid BMP: file is truncated");

  const uint64_t pixel_offset = read_le(10, 4);
  const uint32_t header_size = read_le(14, 4);
  int64_t width = 0;
  int64_t height = 0;
  uint32_t bits_per_pixel = 0;
  uint32_t compression = 0;
  if (header_size == 12) {  // OS/2 BITMAPCOREHEADER
    width = read_le(18, 2);
    height = read_le(20, 2);
    bits_per_pixel = read_le(24, 2);
  } else {
    if (bytes.size() < 34) fail(source_name, "invalid BMP: file is truncated");
    width = static_cast<int32_t>(read_le(18, 4));
    height = static_cast<int32_t>(read_le(22, 4));
    bits_per_pixel = read_le(28, 2);
    compression = read_le(30, 4);
  }

  // 0: BI_RGB, 3: BI_BITFIELDS, 6: BI_ALPHABITFIELDS, all uncompressed rows. RLE data has no
  // fixed size; stb_image reads it.
  if (compression != 0 && compression != 3 && compression != 6) return 0;
  const uint64_t row_bytes =
      (static_cast<uint64_t>(std::abs(width)) * bits_per_pixel + 31) / 32 * 4;
  const uint64_t needed = pixel_offset + row_bytes * static_cast<uint64_t>(std::abs(height));
  if (needed > bytes.size()) {
    fail(source_name, "invalid BMP: file is truncated (" + std::to_string(bytes.size()) +
                          " bytes, pixel data needs " + std::to_string(needed) + ")");
  }
  return compression == 0 && bits_per_pixel == 32 ? 3 : 0;
}

RawImage decode_with_stb(std::span<const uint8_t> bytes, const std::string& source_name,
                         const ImageDecodeLimits& limits, const char* format_name,
                         int (*check_format)(std::span<const uint8_t>, const std::string&)) {
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) {
    throw std::invalid_argument("image '" + source_name + "': file too large");
  }
  const int length = static_cast<int>(bytes.size());
  int width = 0;
  int height = 0;
  int channels = 0;
  if (stbi_info_from_memory(bytes.data(), length, &width, &height, &channels) == 0) {
    throw std::invalid_argument("image '" + source_name + "': invalid " + format_name + ": " +
                                stbi_failure_reason());
  }
  check_image_size(width, height, limits, source_name);
  const int requested_channels = check_format(bytes, source_name);

  // GIF always comes back as RGBA (transparent pixels have alpha 0); BMP as RGB or RGBA.
  std::unique_ptr<stbi_uc, StbFree> pixels(
      stbi_load_from_memory(bytes.data(), length, &width, &height, &channels,
                            requested_channels));
  if (pixels == nullptr) {
    throw std::invalid_argument("image '" + source_name + "': invalid " + format_name + ": " +
                                stbi_failure_reason());
  }
  if (requested_channels != 0) channels = requested_channels;
  RawImage image;
  image.width = width;
  image.height = height;
  switch (channels) {
    case 1:
      image.layout = PixelLayout::gray;
      break;
    case 2:
      image.layout = PixelLayout::gray_alpha;
      break;
    case 3:
      image.layout = PixelLayout::rgb;
      break;
    case 4:
      image.layout = PixelLayout::rgba;
      break;
    default:
      throw std::invalid_argument("image '" + source_name + "': unsupported " + format_name +
                                  " with " + std::to_string(channels) + " channels");
  }
  const size_t size = static_cast<size_t>(width) * height * channels;
  image.pixels.assign(pixels.get(), pixels.get() + size);
  return image;
}

}  // namespace

// NOTE: only GIFs whose first frame covers the whole logical screen are compared against PIL;
// how the uncovered area is filled (stb_image: transparent, so white here) may differ from PIL.
RawImage decode_gif(std::span<const uint8_t> bytes, const std::string& source_name,
                    const ImageDecodeLimits& limits) {
  return decode_with_stb(bytes, source_name, limits, "GIF", check_gif);
}

RawImage decode_bmp(std::span<const uint8_t> bytes, const std::string& source_name,
                    const ImageDecodeLimits& limits) {
  return decode_with_stb(bytes, source_name, limits, "BMP", check_bmp);
}

}  // namespace mxgemma::media_detail
