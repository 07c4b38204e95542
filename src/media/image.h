// Image files decoded to 8-bit RGB, as PIL's Image.open, ImageOps.exif_transpose and the
// transformers convert_to_rgb produce them: the pixels the Gemma 4 image processor starts from.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace mxgemma {

// Limits checked against the header before any pixel is decoded, so that a small file that
// declares a huge image (a decompression bomb) fails fast instead of allocating gigabytes.
struct ImageDecodeLimits {
  int max_side = 32768;                    // pixels, width or height
  int64_t max_pixels = int64_t{64} << 20;  // width * height, 64 Mpx
};

struct DecodedImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // [height, width, 3], row-major
};

// Decodes JPEG, PNG, WebP, GIF (first frame) or BMP, chosen by the file's magic bytes.
// The result is what PIL gives after exif_transpose and transformers' convert_to_rgb:
// EXIF orientation applied, transparency composited on white, CMYK JPEG converted to RGB,
// 16-bit channels reduced to 8 bits the way PIL reduces them. mlx-vlm's load_image instead calls
// convert("RGB"), which drops alpha without compositing; this follows transformers.
// Throws std::invalid_argument "image '<source_name>': <problem>" for bad or unsupported
// data, sizes beyond `limits` included.
DecodedImage decode_image(std::span<const uint8_t> bytes, const std::string& source_name,
                          const ImageDecodeLimits& limits = {});

// Reads and decodes a file. Throws std::invalid_argument naming the path when it cannot be
// read or is not a supported image.
DecodedImage decode_image_file(const std::filesystem::path& path,
                               const ImageDecodeLimits& limits = {});

}  // namespace mxgemma
