// JPEG through libjpeg(-turbo) with the settings PIL uses: the default ISLOW IDCT and fancy
// upsampling, 1 component as gray, 3 as RGB, 4 (CMYK or YCCK) as CMYK.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include <jpeglib.h>
#include <jerror.h>

#include "media/image_codecs.h"

namespace mxgemma::media_detail {

namespace {

struct JpegErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_jpeg_error(j_common_ptr info) {
  auto* manager = reinterpret_cast<JpegErrorManager*>(info->err);
  info->err->format_message(info, manager->message);
  std::longjmp(manager->jump, 1);
}

// libjpeg only warns when the data ends early and pads the image with gray; PIL raises
// "image file is truncated" there, so the premature end is an error here too.
void on_jpeg_message(j_common_ptr info, int level) {
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) {
    on_jpeg_error(info);
  }
}

// Finds the frame header (SOFn) and checks the declared size before libjpeg allocates anything.
// Returns without a check when the markers end first; libjpeg then reports the problem.
void check_declared_size(std::span<const uint8_t> bytes, const std::string& source_name,
                         const ImageDecodeLimits& limits) {
  size_t pos = 2;  // after SOI
  while (pos + 4 <= bytes.size()) {
    if (bytes[pos] != 0xFF) return;
    const uint8_t marker = bytes[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // markers without a length
      pos += 2;
      continue;
    }
    const bool is_frame_header = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 &&
                                 marker != 0xC8 && marker != 0xCC;
    if (is_frame_header) {
      // SOFn segment: length (2), sample precision (1), height (2), width (2).
      if (pos + 9 > bytes.size()) return;
      const int height = (bytes[pos + 5] << 8) | bytes[pos + 6];
      const int width = (bytes[pos + 7] << 8) | bytes[pos + 8];
      check_image_size(width, height, limits, source_name);
      return;
    }
    if (marker == 0xDA) return;  // start of scan before any frame header
    pos += 2 + ((bytes[pos + 2] << 8) | bytes[pos + 3]);
  }
}

// All libjpeg calls sit in this function, which owns no C++ object, so the longjmp from an
// error skips no destructor. `image` lives in the caller.
bool decode_with_libjpeg(jpeg_decompress_struct* info, JpegErrorManager* errors,
                         std::span<const uint8_t> bytes, const std::string& source_name,
                         const ImageDecodeLimits& limits, RawImage* image,
                         std::string* size_error) {
  if (setjmp(errors->jump)) {
    return false;
  }
  jpeg_create_decompress(info);
  jpeg_mem_src(info, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(info, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(info, TRUE);

  try {
    check_image_size(info->image_width, info->image_height, limits, source_name);
  } catch (const std::invalid_argument& error) {
    *size_error = error.what();
    return false;
  }

  switch (info->num_components) {
    case 1:
      info->out_color_space = JCS_GRAYSCALE;
      image->layout = PixelLayout::gray;
      break;
    case 3:
      info->out_color_space = JCS_RGB;
      image->layout = PixelLayout::rgb;
      break;
    case 4:
      info->out_color_space = JCS_CMYK;
      image->layout = PixelLayout::cmyk;
      break;
    default:
      std::snprintf(errors->message, sizeof(errors->message),
                    "unsupported JPEG with %d components", info->num_components);
      return false;
  }
  for (jpeg_saved_marker_ptr marker = info->marker_list; marker != nullptr;
       marker = marker->next) {
    if (marker->marker == JPEG_APP0 + 1 && marker->data_length >= 6 &&
        std::memcmp(marker->data, "Exif\0\0", 6) == 0) {
      image->exif_orientation = read_exif_orientation({marker->data, marker->data_length});
      break;
    }
  }

  jpeg_start_decompress(info);
  image->width = static_cast<int>(info->output_width);
  image->height = static_cast<int>(info->output_height);
  const size_t row_bytes = static_cast<size_t>(info->output_width) * info->output_components;
  image->pixels.resize(row_bytes * info->output_height);
  while (info->output_scanline < info->output_height) {
    JSAMPROW row = image->pixels.data() + row_bytes * info->output_scanline;
    jpeg_read_scanlines(info, &row, 1);
  }
  jpeg_finish_decompress(info);
  return true;
}

}  // namespace

RawImage decode_jpeg(std::span<const uint8_t> bytes, const std::string& source_name,
                     const ImageDecodeLimits& limits) {
  jpeg_decompress_struct info{};
  JpegErrorManager errors{};
  info.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = on_jpeg_error;
  errors.base.emit_message = on_jpeg_message;

  check_declared_size(bytes, source_name, limits);
  RawImage image;
  std::string size_error;
  const bool ok =
      decode_with_libjpeg(&info, &errors, bytes, source_name, limits, &image, &size_error);
  jpeg_destroy_decompress(&info);
  if (!size_error.empty()) {
    throw std::invalid_argument(size_error);
  }
  if (!ok) {
    throw std::invalid_argument("image '" + source_name + "': invalid JPEG: " + errors.message);
  }
  return image;
}

}  // namespace mxgemma::media_detail
