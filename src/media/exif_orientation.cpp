#include <cstring>

#include "media/image_codecs.h"

namespace mxgemma::media_detail {

namespace {

constexpr uint16_t kOrientationTag = 0x0112;
constexpr uint16_t kTiffTypeShort = 3;

uint16_t read_u16(const uint8_t* p, bool little_endian) {
  return little_endian ? static_cast<uint16_t>(p[0] | (p[1] << 8))
                       : static_cast<uint16_t>((p[0] << 8) | p[1]);
}

uint32_t read_u32(const uint8_t* p, bool little_endian) {
  return little_endian ? (uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) |
                          (uint32_t{p[3]} << 24))
                       : ((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
                          (uint32_t{p[2]} << 8) | uint32_t{p[3]});
}

}  // namespace

int read_exif_orientation(std::span<const uint8_t> exif) {
  if (exif.size() >= 6 && std::memcmp(exif.data(), "Exif\0\0", 6) == 0) {
    exif = exif.subspan(6);
  }
  // TIFF header: byte order "II" or "MM", the magic 42, then the offset of IFD0.
  if (exif.size() < 8) return 1;
  bool little_endian;
  if (exif[0] == 'I' && exif[1] == 'I') {
    little_endian = true;
  } else if (exif[0] == 'M' && exif[1] == 'M') {
    little_endian = false;
  } else {
    return 1;
  }
  if (read_u16(exif.data() + 2, little_endian) != 42) return 1;

  const uint64_t ifd_offset = read_u32(exif.data() + 4, little_endian);
  if (ifd_offset + 2 > exif.size()) return 1;
  const uint16_t entry_count = read_u16(exif.data() + ifd_offset, little_endian);
  // Each IFD entry is 12 bytes: tag, type, count, then the value (or its offset).
  for (uint32_t i = 0; i < entry_count; ++i) {
    const uint64_t entry = ifd_offset + 2 + uint64_t{12} * i;
    if (entry + 12 > exif.size()) return 1;
    const uint8_t* p = exif.data() + entry;
    if (read_u16(p, little_endian) != kOrientationTag) continue;
    if (read_u16(p + 2, little_endian) != kTiffTypeShort) return 1;
    const int orientation = read_u16(p + 8, little_endian);
    return orientation >= 1 && orientation <= 8 ? orientation : 1;
  }
  return 1;
}

}  // namespace mxgemma::media_detail
