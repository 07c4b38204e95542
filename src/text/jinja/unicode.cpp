#include "text/jinja/unicode.h"

#include "text/utf8.h"

namespace mxgemma::jinja {

std::u32string utf8_decode(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    char32_t code_point = c;
    size_t extra = 0;
    if (c >= 0xF0) {
      code_point = c & 0x07;
      extra = 3;
    } else if (c >= 0xE0) {
      code_point = c & 0x0F;
      extra = 2;
    } else if (c >= 0xC0) {
      code_point = c & 0x1F;
      extra = 1;
    }
    // A sequence truncated by the end of the text decodes byte by byte instead of failing.
    if (extra > 0 && i + extra >= text.size()) {
      out.push_back(c);
      ++i;
      continue;
    }
    for (size_t k = 1; k <= extra; ++k) {
      code_point = (code_point << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    }
    out.push_back(code_point);
    i += extra + 1;
  }
  return out;
}

void utf8_append(std::string& out, char32_t c) { utf8::append(out, c); }

std::string utf8_encode(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) utf8_append(out, c);
  return out;
}

bool is_ascii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

size_t utf8_length(std::string_view text) {
  size_t count = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

namespace {

char32_t upper_of(char32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0x80) return c;
  if (c == 0xB5) return 0x39C;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c >= 0x100 && c <= 0x17F) {
    // Latin Extended-A pairs case as even/odd, except the 0x139-0x148 and 0x179-0x17E runs.
    const bool odd_pairs = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (c == 0x131) return 'I';
    if (c == 0x17F) return 'S';
    if (odd_pairs) return (c % 2 == 0) ? c - 1 : c;
    if (c == 0x138 || c == 0x149) return c;
    return (c % 2 == 1) ? c - 1 : c;
  }
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

char32_t lower_of(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if (c >= 0x100 && c <= 0x17F) {
    const bool odd_pairs = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (c == 0x130) return 'i';
    if (odd_pairs) return (c % 2 == 1) ? c + 1 : c;
    if (c == 0x138 || c == 0x149 || c == 0x17F) return c;
    return (c % 2 == 0) ? c + 1 : c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

void append_upper(std::u32string& out, char32_t c) {
  if (c == 0xDF) {  // ß upper-cases to "SS" in Python
    out += U"SS";
    return;
  }
  out.push_back(upper_of(c));
}

}  // namespace

bool is_cased_lower(char32_t c) { return upper_of(c) != c || c == 0xDF; }
bool is_cased_upper(char32_t c) { return lower_of(c) != c; }

bool is_word_char(char32_t c) {
  if (c == '_' || (c >= '0' && c <= '9')) return true;
  if (is_cased_lower(c) || is_cased_upper(c)) return true;
  return c == 0xAA || c == 0xBA || (c >= 0xC0 && c < 0x2000 && c != 0xD7 && c != 0xF7);
}

std::string to_upper(std::string_view text) {
  std::u32string out;
  for (char32_t c : utf8_decode(text)) append_upper(out, c);
  return utf8_encode(out);
}

std::string to_lower(std::string_view text) {
  if (is_ascii(text)) {
    std::string out(text);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    return out;
  }
  std::u32string out;
  for (char32_t c : utf8_decode(text)) out.push_back(lower_of(c));
  return utf8_encode(out);
}

std::string to_title(std::string_view text) {
  // Python: a cased character following an uncased one starts a word.
  std::u32string out;
  bool previous_cased = false;
  for (char32_t c : utf8_decode(text)) {
    const bool cased = is_cased_lower(c) || is_cased_upper(c);
    if (cased && !previous_cased) {
      append_upper(out, c);
    } else {
      out.push_back(lower_of(c));
    }
    previous_cased = cased;
  }
  return utf8_encode(out);
}

std::string to_capitalize(std::string_view text) {
  std::u32string out;
  bool first = true;
  for (char32_t c : utf8_decode(text)) {
    if (first) {
      append_upper(out, c);
      first = false;
    } else {
      out.push_back(lower_of(c));
    }
  }
  return utf8_encode(out);
}

std::string strip(std::string_view text, bool left, bool right, const std::string* chars) {
  const std::u32string code_points = utf8_decode(text);
  const std::u32string strip_set = chars ? utf8_decode(*chars) : std::u32string();
  auto should_strip = [&](char32_t c) {
    return chars ? strip_set.find(c) != std::u32string::npos : is_python_space(c);
  };
  size_t begin = 0;
  size_t end = code_points.size();
  if (left) {
    while (begin < end && should_strip(code_points[begin])) ++begin;
  }
  if (right) {
    while (end > begin && should_strip(code_points[end - 1])) --end;
  }
  return utf8_encode(std::u32string_view(code_points).substr(begin, end - begin));
}

}  // namespace mxgemma::jinja
