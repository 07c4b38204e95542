#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "media/image.h"
#include "media/image_codecs.h"

namespace mxgemma {
namespace media_detail {

int channel_count(PixelLayout layout) {
  switch (layout) {
    case PixelLayout::gray:
      return 1;
    case PixelLayout::gray_alpha:
      return 2;
    case PixelLayout::rgb:
      return 3;
    case PixelLayout::rgba:
    case PixelLayout::cmyk:
      return 4;
  }
  return 0;
}

void check_image_size(int64_t width, int64_t height, const ImageDecodeLimits& limits,
                      const std::string& source_name) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width <= 0 || height <= 0) {
    throw std::invalid_argument("image '" + source_name + "': invalid size " + size +
                                " (a side is 0)");
  }
  if (width > limits.max_side || height > limits.max_side) {
    throw std::invalid_argument("image '" + source_name + "': size " + size +
                                " exceeds the maximum side of " +
                                std::to_string(limits.max_side) + " pixels");
  }
  if (width * height > limits.max_pixels) {
    throw std::invalid_argument("image '" + source_name + "': size " + size + " (" +
                                std::to_string(width * height) +
                                " pixels) exceeds the limit of " +
                                std::to_string(limits.max_pixels) +
                                " pixels; refusing to decode a possible decompression bomb");
  }
}

}  // namespace media_detail

namespace {

using media_detail::PixelLayout;
using media_detail::RawImage;

enum class ImageFormat { jpeg, png, webp, gif, bmp, unknown };

ImageFormat sniff_format(std::span<const uint8_t> bytes) {
  auto starts_with = [&](size_t offset, const char* magic, size_t length) {
    return bytes.size() >= offset + length && std::memcmp(bytes.data() + offset, magic, length) == 0;
  };
  if (starts_with(0, "\xFF\xD8\xFF", 3)) return ImageFormat::jpeg;
  if (starts_with(0, "\x89PNG\r\n\x1A\n", 8)) return ImageFormat::png;
  if (starts_with(0, "RIFF", 4) && starts_with(8, "WEBP", 4)) return ImageFormat::webp;
  if (starts_with(0, "GIF87a", 6) || starts_with(0, "GIF89a", 6)) return ImageFormat::gif;
  if (starts_with(0, "BM", 2)) return ImageFormat::bmp;
  return ImageFormat::unknown;
}

// PIL's alpha_composite of the pixel over opaque white, in its 7-bit fixed point: the
// result equals Pillow's AlphaComposite.c for every (color, alpha) pair (checked exhaustively
// against Pillow 13.0.0).
uint8_t composite_on_white(uint32_t color, uint32_t alpha) {
  const uint32_t blended = (color * alpha + 255 * (255 - alpha)) * 128 + (128 << 7);
  return static_cast<uint8_t>((((blended >> 8) + blended) >> 8) >> 7);
}

// PIL's cmyk2rgb: channel = (255 - k) - round((255 - k) * c / 255) with its shift-based
// division. PIL first inverts the values libjpeg returns for every 4-component JPEG (rawmode
// CMYK;I, the Adobe convention), so c = 255 - stored_c and 255 - k = stored_k.
uint8_t cmyk_channel(uint32_t stored_c, uint32_t stored_k) {
  const uint32_t c = 255 - stored_c;
  const uint32_t not_k = stored_k;
  const uint32_t product = c * not_k + 128;
  return static_cast<uint8_t>(not_k - (((product >> 8) + product) >> 8));
}

std::vector<uint8_t> to_rgb(const RawImage& image) {
  const size_t count = static_cast<size_t>(image.width) * image.height;
  std::vector<uint8_t> rgb(count * 3);
  const uint8_t* in = image.pixels.data();
  uint8_t* out = rgb.data();
  for (size_t i = 0; i < count; ++i, out += 3) {
    switch (image.layout) {
      case PixelLayout::gray:
        out[0] = out[1] = out[2] = in[i];
        break;
      case PixelLayout::gray_alpha:
        out[0] = out[1] = out[2] = composite_on_white(in[2 * i], in[2 * i + 1]);
        break;
      case PixelLayout::rgb:
        std::memcpy(out, in + 3 * i, 3);
        break;
      case PixelLayout::rgba:
        for (int c = 0; c < 3; ++c) out[c] = composite_on_white(in[4 * i + c], in[4 * i + 3]);
        break;
      case PixelLayout::cmyk:
        for (int c = 0; c < 3; ++c) out[c] = cmyk_channel(in[4 * i + c], in[4 * i + 3]);
        break;
    }
  }
  return rgb;
}

// Applies an EXIF orientation as ImageOps.exif_transpose does. For each output pixel (x, y)
// the source pixel is found by the inverse of the stored transform.
DecodedImage apply_orientation(DecodedImage image, int orientation) {
  if (orientation <= 1 || orientation > 8) return image;
  const int width = image.width;
  const int height = image.height;
  const bool swaps_axes = orientation >= 5;
  DecodedImage out;
  out.width = swaps_axes ? height : width;
  out.height = swaps_axes ? width : height;
  out.rgb.resize(image.rgb.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int source_x = x;
      int source_y = y;
      switch (orientation) {
        case 2:  // mirrored left to right
          source_x = width - 1 - x;
          break;
        case 3:  // rotated 180 degrees
          source_x = width - 1 - x;
          source_y = height - 1 - y;
          break;
        case 4:  // mirrored top to bottom
          source_y = height - 1 - y;
          break;
        case 5:  // transposed
          source_x = y;
          source_y = x;
          break;
        case 6:  // displayed after a 90 degree clockwise rotation
          source_x = y;
          source_y = height - 1 - x;
          break;
        case 7:  // transversed (mirrored across the anti-diagonal)
          source_x = width - 1 - y;
          source_y = height - 1 - x;
          break;
        case 8:  // displayed after a 90 degree counter-clockwise rotation
          source_x = width - 1 - y;
          source_y = x;
          break;
      }
      const size_t from = (static_cast<size_t>(source_y) * width + source_x) * 3;
      const size_t to = (static_cast<size_t>(y) * out.width + x) * 3;
      std::memcpy(out.rgb.data() + to, image.rgb.data() + from, 3);
    }
  }
  return out;
}

}  // namespace

DecodedImage decode_image(std::span<const uint8_t> bytes, const std::string& source_name,
                          const ImageDecodeLimits& limits) {
  RawImage raw;
  switch (sniff_format(bytes)) {
    case ImageFormat::jpeg:
      raw = media_detail::decode_jpeg(bytes, source_name, limits);
      break;
    case ImageFormat::png:
      raw = media_detail::decode_png(bytes, source_name, limits);
      break;
    case ImageFormat::webp:
      raw = media_detail::decode_webp(bytes, source_name, limits);
      break;
    case ImageFormat::gif:
      raw = media_detail::decode_gif(bytes, source_name, limits);
      break;
    case ImageFormat::bmp:
      raw = media_detail::decode_bmp(bytes, source_name, limits);
      break;
    case ImageFormat::unknown:
      throw std::invalid_argument("image '" + source_name + "': not a supported image (" +
                                  std::to_string(bytes.size()) +
                                  " bytes; expected JPEG, PNG, WebP, GIF or BMP)");
  }
  const size_t expected = static_cast<size_t>(raw.width) * raw.height *
                          media_detail::channel_count(raw.layout);
  if (raw.pixels.size() != expected) {
    throw std::invalid_argument("image '" + source_name + "': decoder returned " +
                                std::to_string(raw.pixels.size()) + " bytes, expected " +
                                std::to_string(expected));
  }

  DecodedImage image;
  image.width = raw.width;
  image.height = raw.height;
  image.rgb = to_rgb(raw);
  return apply_orientation(std::move(image), raw.exif_orientation);
}

DecodedImage decode_image_file(const std::filesystem::path& path,
                               const ImageDecodeLimits& limits) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw std::invalid_argument("image '" + path.string() + "': cannot open file");
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                             std::istreambuf_iterator<char>());
  if (file.bad()) {
    throw std::invalid_argument("image '" + path.string() + "': read failed");
  }
  return decode_image(bytes, path.string(), limits);
}

}  // namespace mxgemma
