#include "text/utf8.h"

#include <locale.h>
#include <wctype.h>

namespace mxgemma::utf8 {
namespace {

// Allowed range of the second byte of a sequence, by lead byte (Unicode Table 3-7); the third
// and fourth bytes are always 0x80..0xBF.
struct LeadByte {
  size_t length = 0;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
};

LeadByte classify_lead(unsigned char byte) {
  if (byte < 0x80) return {1};
  if (byte >= 0xC2 && byte <= 0xDF) return {2};
  if (byte == 0xE0) return {3, 0xA0, 0xBF};
  if (byte == 0xED) return {3, 0x80, 0x9F};
  if (byte >= 0xE1 && byte <= 0xEF) return {3};
  if (byte == 0xF0) return {4, 0x90, 0xBF};
  if (byte == 0xF4) return {4, 0x80, 0x8F};
  if (byte >= 0xF1 && byte <= 0xF3) return {4};
  return {0};
}

// Number of bytes at text[pos] that follow the well-formed pattern of their lead byte, up to the
// first byte that breaks it. It equals the lead's length for a whole character.
size_t matched_prefix(std::string_view text, size_t pos, const LeadByte& lead) {
  size_t matched = 1;
  while (matched < lead.length && pos + matched < text.size()) {
    const auto byte = static_cast<unsigned char>(text[pos + matched]);
    const unsigned char low = matched == 1 ? lead.second_min : 0x80;
    const unsigned char high = matched == 1 ? lead.second_max : 0xBF;
    if (byte < low || byte > high) break;
    ++matched;
  }
  return matched;
}

}  // namespace

size_t sequence_length(std::string_view text, size_t pos) {
  const LeadByte lead = classify_lead(static_cast<unsigned char>(text[pos]));
  if (lead.length == 0) return 0;
  return matched_prefix(text, pos, lead) == lead.length ? lead.length : 0;
}

char32_t decode(std::string_view text, size_t pos, size_t length) {
  const auto byte = [&](size_t i) {
    return static_cast<char32_t>(static_cast<unsigned char>(text[pos + i]));
  };
  switch (length) {
    case 1:
      return byte(0);
    case 2:
      return ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F);
    case 3:
      return ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
    default:
      return ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) |
             (byte(3) & 0x3F);
  }
}

void append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

bool is_valid(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = sequence_length(text, pos);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

std::string replace_invalid(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const LeadByte lead = classify_lead(static_cast<unsigned char>(text[pos]));
    const size_t matched = lead.length == 0 ? 1 : matched_prefix(text, pos, lead);
    if (matched == lead.length) {
      out.append(text.substr(pos, matched));
    } else {
      out.append(kReplacementUtf8);
    }
    pos += matched;
  }
  return out;
}

bool is_whitespace(char32_t c) {
  if (c >= 0x09 && c <= 0x0D) return true;
  switch (c) {
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_alphanumeric(char32_t c) {
  if (c < 0x80) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  }
  // NOTE: glibc's Unicode version may differ from the one of the Rust standard library that
  // `tokenizers` was built with. Only `single_word` added tokens use this.
  static const locale_t utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  if (utf8_locale == static_cast<locale_t>(0)) return false;
  return iswalnum_l(static_cast<wint_t>(c), utf8_locale) != 0;
}

}  // namespace mxgemma::utf8
