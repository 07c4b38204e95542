// UTF-8 helpers for the tokenizer: character boundaries, the replacement of ill-formed bytes,
// and the character classes Hugging Face `tokenizers` takes from Rust's `char`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mxgemma::utf8 {

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// Length of the well-formed UTF-8 sequence that starts at text[pos], or 0 when there is none.
// Ill-formed cases: a stray continuation byte, an overlong form, a surrogate, a value above
// U+10FFFF, and a sequence cut short by the end of `text`.
size_t sequence_length(std::string_view text, size_t pos);

// Decodes the well-formed sequence of `length` bytes at text[pos] (see sequence_length).
char32_t decode(std::string_view text, size_t pos, size_t length);

void append(std::string& out, char32_t code_point);

bool is_valid(std::string_view text);

// Replaces each maximal ill-formed subpart with U+FFFD, as Python's bytes.decode("utf-8",
// errors="replace") and the Unicode Standard (section 3.9, "U+FFFD Substitution of Maximal
// Subparts") do. Returns `text` unchanged when it is well-formed.
std::string replace_invalid(std::string_view text);

// Rust's char::is_whitespace: the Unicode White_Space property.
bool is_whitespace(char32_t c);

// Rust's char::is_alphanumeric (Alphabetic or Numeric), taken from the C library's wide-character
// tables under a UTF-8 locale; exact for ASCII.
bool is_alphanumeric(char32_t c);

}  // namespace mxgemma::utf8
