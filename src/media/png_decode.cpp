// PNG through libpng, with the layout PIL's PNG plugin opens. Palette and tRNS become RGB(A) or
// gray + alpha, and 1/2/4-bit gray is scaled to 8 bits. 16-bit samples keep their high byte,
// except 16-bit gray without alpha: PIL opens it as mode I;16, whose convert("RGB") clips every
// value above 255 to 255.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include <png.h>

#include "media/image_codecs.h"

namespace mxgemma::media_detail {

namespace {

struct PngSource {
  std::span<const uint8_t> bytes;
  size_t offset = 0;
};

struct PngErrorState {
  std::jmp_buf jump;
  char message[256];
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngErrorState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof(state->message), "%s", message);
  std::longjmp(state->jump, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

void read_png_bytes(png_structp png, png_bytep out, png_size_t length) {
  auto* source = static_cast<PngSource*>(png_get_io_ptr(png));
  if (length > source->bytes.size() - source->offset) {
    png_error(png, "file is truncated");
  }
  std::memcpy(out, source->bytes.data() + source->offset, length);
  source->offset += length;
}

// Narrows 16-bit big-endian samples in place to PIL's 8-bit values.
void narrow_16bit(RawImage* image, bool clip_gray) {
  const size_t samples = image->pixels.size() / 2;
  for (size_t i = 0; i < samples; ++i) {
    const uint8_t high = image->pixels[2 * i];
    const uint8_t low = image->pixels[2 * i + 1];
    if (!clip_gray) {
      image->pixels[i] = high;
    } else {
      image->pixels[i] = high != 0 ? 255 : low;
    }
  }
  image->pixels.resize(samples);
}

// All libpng calls sit here, in a function that owns no C++ object, so the longjmp from an
// error skips no destructor. `image` and `row_pointers` live in the caller.
bool decode_with_libpng(png_structp png, png_infop info, PngErrorState* errors,
                        const std::string& source_name, const ImageDecodeLimits& limits,
                        RawImage* image, std::vector<png_bytep>* row_pointers,
                        std::string* size_error, bool* clip_gray16) {
  if (setjmp(errors->jump)) {
    return false;
  }
  png_set_sig_bytes(png, 0);
  png_read_info(png, info);

  png_uint_32 width = 0;
  png_uint_32 height = 0;
  int bit_depth = 0;
  int color_type = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, nullptr, nullptr, nullptr);
  try {
    check_image_size(width, height, limits, source_name);
  } catch (const std::invalid_argument& error) {
    *size_error = error.what();
    return false;
  }

  png_bytep exif = nullptr;
  png_uint_32 exif_length = 0;
  if (png_get_eXIf_1(png, info, &exif_length, &exif) != 0 && exif != nullptr) {
    image->exif_orientation = read_exif_orientation({exif, exif_length});
  }

  // Palette to RGB, gray below 8 bits to 8 bits, tRNS to an alpha channel.
  png_set_expand(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  const int channels = png_get_channels(png, info);
  const int out_depth = png_get_bit_depth(png, info);
  switch (channels) {
    case 1:
      image->layout = PixelLayout::gray;
      break;
    case 2:
      image->layout = PixelLayout::gray_alpha;
      break;
    case 3:
      image->layout = PixelLayout::rgb;
      break;
    default:
      image->layout = PixelLayout::rgba;
      break;
  }
  *clip_gray16 = out_depth == 16 && color_type == PNG_COLOR_TYPE_GRAY;
  image->width = static_cast<int>(width);
  image->height = static_cast<int>(height);
  const size_t row_bytes = png_get_rowbytes(png, info);
  image->pixels.resize(row_bytes * height);
  row_pointers->resize(height);
  for (png_uint_32 y = 0; y < height; ++y) {
    (*row_pointers)[y] = image->pixels.data() + row_bytes * y;
  }
  png_read_image(png, row_pointers->data());
  png_read_end(png, nullptr);
  return true;
}

}  // namespace

RawImage decode_png(std::span<const uint8_t> bytes, const std::string& source_name,
                    const ImageDecodeLimits& limits) {
  // The IHDR chunk must come first: signature (8), length (4), "IHDR", width, height. Checking
  // its size here rejects a decompression bomb before libpng reads further.
  if (bytes.size() >= 24 && std::memcmp(bytes.data() + 12, "IHDR", 4) == 0) {
    auto read_u32 = [&](size_t at) {
      return (uint32_t{bytes[at]} << 24) | (uint32_t{bytes[at + 1]} << 16) |
             (uint32_t{bytes[at + 2]} << 8) | uint32_t{bytes[at + 3]};
    };
    check_image_size(read_u32(16), read_u32(20), limits, source_name);
  }
  PngErrorState errors{};
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &errors, on_png_error, on_png_warning);
  if (png == nullptr) {
    throw std::runtime_error("image '" + source_name + "': libpng initialization failed");
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    throw std::runtime_error("image '" + source_name + "': libpng initialization failed");
  }
  // libpng's own caps would reject large images with a less specific message.
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  PngSource source{bytes, 0};
  png_set_read_fn(png, &source, read_png_bytes);

  RawImage image;
  std::vector<png_bytep> row_pointers;
  std::string size_error;
  bool clip_gray16 = false;
  const bool ok = decode_with_libpng(png, info, &errors, source_name, limits, &image,
                                     &row_pointers, &size_error, &clip_gray16);
  png_destroy_read_struct(&png, &info, nullptr);
  if (!size_error.empty()) {
    throw std::invalid_argument(size_error);
  }
  if (!ok) {
    throw std::invalid_argument("image '" + source_name + "': invalid PNG: " + errors.message);
  }
  const size_t samples_8bit =
      static_cast<size_t>(image.width) * image.height * channel_count(image.layout);
  if (image.pixels.size() == 2 * samples_8bit) {
    narrow_16bit(&image, clip_gray16);
  }
  return image;
}

}  // namespace mxgemma::media_detail
