// WebP through libwebp: still images only, RGBA when the file has alpha, else RGB, as PIL opens
// them. EXIF orientation is read from the container's EXIF chunk.
#include <stdexcept>
#include <string>

#include <webp/decode.h>
#include <webp/demux.h>

#include "media/image_codecs.h"

namespace mxgemma::media_detail {

namespace {

const char* vp8_status_name(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
      return "suspended";
    case VP8_STATUS_USER_ABORT:
      return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "file is truncated";
    case VP8_STATUS_OK:
      return "ok";
  }
  return "unknown error";
}

int read_webp_orientation(std::span<const uint8_t> bytes) {
  WebPData data{bytes.data(), bytes.size()};
  WebPDemuxer* demuxer = WebPDemux(&data);
  if (demuxer == nullptr) return 1;
  int orientation = 1;
  WebPChunkIterator chunk;
  if (WebPDemuxGetChunk(demuxer, "EXIF", 1, &chunk) != 0) {
    orientation = read_exif_orientation({chunk.chunk.bytes, chunk.chunk.size});
    WebPDemuxReleaseChunkIterator(&chunk);
  }
  WebPDemuxDelete(demuxer);
  return orientation;
}

}  // namespace

RawImage decode_webp(std::span<const uint8_t> bytes, const std::string& source_name,
                     const ImageDecodeLimits& limits) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  if (status != VP8_STATUS_OK) {
    throw std::invalid_argument("image '" + source_name +
                                "': invalid WebP: " + vp8_status_name(status));
  }
  check_image_size(features.width, features.height, limits, source_name);
  if (features.has_animation != 0) {
    throw std::invalid_argument("image '" + source_name +
                                "': animated WebP is not supported; convert its first frame "
                                "to a still image");
  }

  RawImage image;
  image.width = features.width;
  image.height = features.height;
  image.layout = features.has_alpha != 0 ? PixelLayout::rgba : PixelLayout::rgb;
  const int channels = channel_count(image.layout);
  const size_t stride = static_cast<size_t>(image.width) * channels;
  image.pixels.resize(stride * image.height);
  const uint8_t* decoded =
      features.has_alpha != 0
          ? WebPDecodeRGBAInto(bytes.data(), bytes.size(), image.pixels.data(),
                               image.pixels.size(), static_cast<int>(stride))
          : WebPDecodeRGBInto(bytes.data(), bytes.size(), image.pixels.data(),
                              image.pixels.size(), static_cast<int>(stride));
  if (decoded == nullptr) {
    throw std::invalid_argument("image '" + source_name +
                                "': invalid WebP: pixel data failed to decode (corrupt or "
                                "truncated file)");
  }
  image.exif_orientation = read_webp_orientation(bytes);
  return image;
}

}  // namespace mxgemma::media_detail
