// Format decoders behind decode_image. Each returns the image in its own channel layout
// (gray, gray + alpha, RGB, RGBA or CMYK) so that the conversion to RGB can follow PIL's rules
// in one place.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "media/image.h"

namespace mxgemma::media_detail {

enum class PixelLayout { gray, gray_alpha, rgb, rgba, cmyk };

struct RawImage {
  int width = 0;
  int height = 0;
  PixelLayout layout = PixelLayout::rgb;
  std::vector<uint8_t> pixels;  // [height, width, channels]
  // EXIF Orientation tag (1..8) from the file's metadata; 1 when absent.
  int exif_orientation = 1;
};

int channel_count(PixelLayout layout);

// Throws std::invalid_argument naming the image and both sizes when the declared size is 0 or
// beyond the limits. Decoders call it after reading the header, before decoding pixels.
void check_image_size(int64_t width, int64_t height, const ImageDecodeLimits& limits,
                      const std::string& source_name);

// Each throws std::invalid_argument "image '<source_name>': ..." on bad data.
RawImage decode_jpeg(std::span<const uint8_t> bytes, const std::string& source_name,
                     const ImageDecodeLimits& limits);
RawImage decode_png(std::span<const uint8_t> bytes, const std::string& source_name,
                    const ImageDecodeLimits& limits);
RawImage decode_webp(std::span<const uint8_t> bytes, const std::string& source_name,
                     const ImageDecodeLimits& limits);
RawImage decode_gif(std::span<const uint8_t> bytes, const std::string& source_name,
                    const ImageDecodeLimits& limits);
RawImage decode_bmp(std::span<const uint8_t> bytes, const std::string& source_name,
                    const ImageDecodeLimits& limits);

// Reads the Orientation tag (0x0112) of IFD0 from a TIFF-structured EXIF block, with or without
// the leading "Exif\0\0". Returns 1 when the tag is absent, out of range or the block is malformed,
// as PIL ignores unreadable EXIF.
int read_exif_orientation(std::span<const uint8_t> exif);

}  // namespace mxgemma::media_detail
