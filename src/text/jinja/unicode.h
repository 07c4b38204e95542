// UTF-8 helpers for the Python str semantics templates rely on (len, slicing, case, strip).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mxgemma::jinja {

std::u32string utf8_decode(std::string_view text);
std::string utf8_encode(std::u32string_view text);
void utf8_append(std::string& out, char32_t code_point);
bool is_ascii(std::string_view text);
size_t utf8_length(std::string_view text);

// Python str.isspace() for one code point.
bool is_python_space(char32_t c);
// Python's \w: letters, digits and underscore (ASCII and the Latin, Greek and Cyrillic blocks).
bool is_word_char(char32_t c);
bool is_cased_lower(char32_t c);
bool is_cased_upper(char32_t c);

// Case mappings cover ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic.
// NOTE: other scripts pass through unchanged, where Python would map them.
std::string to_upper(std::string_view text);
std::string to_lower(std::string_view text);
std::string to_title(std::string_view text);       // Python str.title()
std::string to_capitalize(std::string_view text);  // Python str.capitalize()

std::string strip(std::string_view text, bool left, bool right, const std::string* chars);

}  // namespace mxgemma::jinja
