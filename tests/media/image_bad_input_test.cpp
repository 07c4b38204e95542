// Bad image input: each case must raise std::invalid_argument naming the image, never crash.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "media/image.h"
#include "media/image_processor.h"

namespace mxgemma {
namespace {

const std::filesystem::path kImageDir = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "images";

std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// Returns the message of the std::invalid_argument that decoding `bytes` raises, or "" when
// decoding succeeds or raises something else.
std::string decode_error(const std::vector<uint8_t>& bytes, const std::string& name,
                         const ImageDecodeLimits& limits = {}) {
  try {
    decode_image(bytes, name, limits);
  } catch (const std::invalid_argument& error) {
    return error.what();
  } catch (...) {
    return "";
  }
  return "";
}

void put_u32_be(std::vector<uint8_t>& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

void put_u16_le(std::vector<uint8_t>& out, uint32_t value) {
  out.push_back(static_cast<uint8_t>(value));
  out.push_back(static_cast<uint8_t>(value >> 8));
}

void put_u32_le(std::vector<uint8_t>& out, uint32_t value) {
  put_u16_le(out, value & 0xFFFF);
  put_u16_le(out, value >> 16);
}

uint32_t crc32(const uint8_t* data, size_t length) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < length; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// A PNG signature and a valid IHDR chunk declaring width x height, 8-bit RGB, and no pixel data.
std::vector<uint8_t> png_header(uint32_t width, uint32_t height) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> chunk = {'I', 'H', 'D', 'R'};
  put_u32_be(chunk, width);
  put_u32_be(chunk, height);
  chunk.insert(chunk.end(), {8, 2, 0, 0, 0});
  put_u32_be(out, 13);
  out.insert(out.end(), chunk.begin(), chunk.end());
  put_u32_be(out, crc32(chunk.data(), chunk.size()));
  return out;
}

// A baseline JPEG up to its frame header (SOF0), declaring width x height with 3 components.
std::vector<uint8_t> jpeg_header(uint16_t width, uint16_t height) {
  std::vector<uint8_t> out = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 17, 8};
  for (uint16_t value : {height, width}) {
    out.push_back(static_cast<uint8_t>(value >> 8));
    out.push_back(static_cast<uint8_t>(value));
  }
  out.push_back(3);  // components, each: id, sampling factors, quantization table
  for (uint8_t component = 1; component <= 3; ++component) {
    out.push_back(component);
    out.push_back(0x11);
    out.push_back(0);
  }
  return out;
}

// A GIF header and logical screen descriptor declaring width x height.
std::vector<uint8_t> gif_header(uint16_t width, uint16_t height) {
  std::vector<uint8_t> out = {'G', 'I', 'F', '8', '9', 'a'};
  put_u16_le(out, width);
  put_u16_le(out, height);
  out.insert(out.end(), {0x00, 0, 0});
  return out;
}

// A 24-bit BMP file and info header declaring width x height, without pixel rows.
std::vector<uint8_t> bmp_header(int32_t width, int32_t height) {
  std::vector<uint8_t> out = {'B', 'M'};
  put_u32_le(out, 54);
  put_u32_le(out, 0);
  put_u32_le(out, 54);
  put_u32_le(out, 40);
  put_u32_le(out, static_cast<uint32_t>(width));
  put_u32_le(out, static_cast<uint32_t>(height));
  put_u16_le(out, 1);
  put_u16_le(out, 24);
  for (int i = 0; i < 6; ++i) put_u32_le(out, 0);
  return out;
}

// A lossless WebP (VP8L) header declaring width x height (each at most 16384).
std::vector<uint8_t> webp_header(uint32_t width, uint32_t height) {
  std::vector<uint8_t> out = {'R', 'I', 'F', 'F'};
  put_u32_le(out, 4 + 8 + 5);
  out.insert(out.end(), {'W', 'E', 'B', 'P', 'V', 'P', '8', 'L'});
  put_u32_le(out, 5);
  out.push_back(0x2F);
  put_u32_le(out, (width - 1) | ((height - 1) << 14));
  return out;
}

TEST(ImageBadInput, NotAnImage) {
  const std::string text = "hello, this is not an image";
  const std::string message = decode_error({text.begin(), text.end()}, "notes.txt");
  EXPECT_NE(message.find("notes.txt"), std::string::npos) << message;
  EXPECT_NE(message.find("not a supported image"), std::string::npos) << message;
  EXPECT_NE(decode_error({}, "empty.png").find("empty.png"), std::string::npos);
}

TEST(ImageBadInput, MissingFile) {
  try {
    decode_image_file(kImageDir / "no_such_image.png");
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("no_such_image.png"), std::string::npos);
  }
}

TEST(ImageBadInput, TruncatedFiles) {
  for (const char* name : {"photo.jpg", "cmyk.jpg", "alpha.png", "gray16.png", "anim.gif",
                           "wide.bmp", "lossless.webp", "lossy.webp", "large.png"}) {
    const std::vector<uint8_t> bytes = read_bytes(kImageDir / name);
    ASSERT_GT(bytes.size(), 64u) << name;
    for (size_t keep : {bytes.size() / 2, bytes.size() - 16, size_t{20}}) {
      const std::vector<uint8_t> truncated(bytes.begin(), bytes.begin() + keep);
      if (std::string(name) == "anim.gif" && keep == bytes.size() - 16) {
        // Only the second frame is cut: PIL still opens the first one, and so does decode_image.
        EXPECT_EQ(decode_image(truncated, name).width, 30);
        continue;
      }
      const std::string message = decode_error(truncated, name);
      EXPECT_NE(message.find(name), std::string::npos)
          << name << " cut to " << keep << " bytes: " << message;
    }
  }
}

TEST(ImageBadInput, ZeroSide) {
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::vector<uint8_t>>>{
           {"zero.png", png_header(0, 10)},
           {"zero.jpg", jpeg_header(10, 0)},
           {"zero.gif", gif_header(0, 10)},
           {"zero.bmp", bmp_header(10, 0)}}) {
    EXPECT_NE(decode_error(bytes, name).find(name), std::string::npos) << name;
  }
}

TEST(ImageBadInput, HundredThousandPixelSide) {
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::vector<uint8_t>>>{
           {"wide.png", png_header(100000, 1)},
           {"tall.png", png_header(1, 100000)},
           {"wide.bmp", bmp_header(100000, 1)}}) {
    const std::string message = decode_error(bytes, name);
    EXPECT_NE(message.find(name), std::string::npos) << message;
    EXPECT_NE(message.find("100000"), std::string::npos) << message;
    EXPECT_NE(message.find("exceeds the maximum side"), std::string::npos) << message;
  }
}

TEST(ImageBadInput, DecompressionBombRejectedBeforeDecoding) {
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::vector<uint8_t>>>{
           {"bomb.png", png_header(20000, 20000)},
           {"bomb.jpg", jpeg_header(30000, 30000)},
           {"bomb.gif", gif_header(30000, 30000)},
           {"bomb.bmp", bmp_header(20000, 20000)},
           {"bomb.webp", webp_header(16384, 16384)}}) {
    const std::string message = decode_error(bytes, name);
    EXPECT_NE(message.find(name), std::string::npos) << message;
    EXPECT_NE(message.find("decompression bomb"), std::string::npos) << name << ": " << message;
  }
}

TEST(ImageBadInput, LimitsAreConfigurable) {
  const std::vector<uint8_t> bytes = read_bytes(kImageDir / "photo.jpg");
  ImageDecodeLimits limits;
  limits.max_pixels = 64 * 48 - 1;
  EXPECT_NE(decode_error(bytes, "photo.jpg", limits).find("64x48"), std::string::npos);
  limits.max_pixels = 64 * 48;
  EXPECT_EQ(decode_image(bytes, "photo.jpg", limits).width, 64);
}

TEST(ImageBadInput, PreprocessRejectsInconsistentImage) {
  DecodedImage image;
  image.width = 4;
  image.height = 4;
  image.rgb.resize(10);
  EXPECT_THROW(preprocess_image(image, ImageProcessorConfig{}), std::invalid_argument);
  image.width = 0;
  image.rgb.clear();
  EXPECT_THROW(preprocess_image(image, ImageProcessorConfig{}), std::invalid_argument);
}

}  // namespace
}  // namespace mxgemma
