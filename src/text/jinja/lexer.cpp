#include "text/jinja/lexer.h"

#include <cctype>
#include <cstdlib>

#include "text/jinja/unicode.h"
#include "text/jinja/value.h"

namespace mxgemma::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
                               c == '\v'; }

[[noreturn]] void fail(Location where, const std::string& message) {
  throw TemplateError("template syntax error at " + where.describe() + ": " + message);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes a string literal body as Python's "unicode-escape" codec does, because jinja2 decodes
// string literals with it. Unknown escapes such as \d stay as written.
std::string decode_string_literal(const std::string& body, Location where) {
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out += c;
      continue;
    }
    const char e = body[++i];
    switch (e) {
      case '\n':
        break;  // line continuation
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x':
      case 'u':
      case 'U': {
        const size_t width = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
        char32_t code_point = 0;
        for (size_t k = 1; k <= width; ++k) {
          const int digit = i + k < body.size() ? hex_value(body[i + k]) : -1;
          if (digit < 0) {
            fail(where, std::string("truncated \\") + e + " escape in string literal");
          }
          code_point = code_point * 16 + static_cast<char32_t>(digit);
        }
        if (code_point > 0x10FFFF) fail(where, "invalid \\U escape in string literal");
        utf8_append(out, code_point);
        i += width;
        break;
      }
      case 'N':
        // NOTE: named escapes (\N{EM DASH}) would need the Unicode name table; jinja2 accepts
        // them, this engine rejects them.
        fail(where, "\\N{...} escapes in string literals are not supported");
      default:
        if (e >= '0' && e <= '7') {
          char32_t code_point = 0;
          size_t k = 0;
          while (k < 3 && i + k < body.size() && body[i + k] >= '0' && body[i + k] <= '7') {
            code_point = code_point * 8 + static_cast<char32_t>(body[i + k] - '0');
            ++k;
          }
          utf8_append(out, code_point);
          i += k - 1;
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : source_(std::move(source)) {}

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < source_.size()) {
      const size_t start = find_tag_start(pos);
      if (start == std::string::npos) {
        emit(TokenKind::kText, source_.substr(pos), location_at(pos));
        break;
      }
      const char tag = source_[start + 1];
      const size_t after_open = start + 2;
      const char sign = after_open < source_.size() ? source_[after_open] : '\0';
      const bool has_sign = sign == '-' || sign == '+';

      std::string text = source_.substr(pos, start - pos);
      const bool is_raw = tag == '%' && is_raw_begin(after_open + (has_sign ? 1 : 0));
      if (sign == '-') {
        text = rstrip(text);
      } else if (sign != '+' && tag != '{') {
        // lstrip_blocks: drop the indentation before a block or comment that starts a line.
        const size_t line_pos = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if (line_pos > 0 || line_starting) {
          const std::string tail = text.substr(line_pos);
          if (!tail.empty() && only_whitespace(tail)) text.erase(line_pos);
        }
      }
      if (!text.empty()) emit(TokenKind::kText, text, location_at(pos));

      size_t cursor = after_open + (has_sign ? 1 : 0);
      if (is_raw) {
        pos = lex_raw(cursor, start);
      } else if (tag == '#') {
        pos = lex_comment(cursor, start);
      } else {
        pos = lex_tag(cursor, tag == '%', start);
      }
      line_starting = pos > 0 && source_[pos - 1] == '\n';
    }
    const Location end = location_at(source_.size());
    tokens_.push_back({TokenKind::kEnd, "", end.line, end.column});
    return std::move(tokens_);
  }

 private:
  size_t find_tag_start(size_t pos) const {
    while (true) {
      pos = source_.find('{', pos);
      if (pos == std::string::npos || pos + 1 >= source_.size()) return std::string::npos;
      const char next = source_[pos + 1];
      if (next == '{' || next == '%' || next == '#') return pos;
      ++pos;
    }
  }

  Location location_at(size_t pos) {
    // Counted incrementally because positions only move forward. Columns count characters, not
    // bytes: UTF-8 continuation bytes do not start one.
    while (scan_pos_ < pos && scan_pos_ < source_.size()) {
      const unsigned char byte = static_cast<unsigned char>(source_[scan_pos_]);
      if (byte == '\n') {
        ++scan_location_.line;
        scan_location_.column = 1;
      } else if ((byte & 0xC0) != 0x80) {
        ++scan_location_.column;
      }
      ++scan_pos_;
    }
    return scan_location_;
  }

  static std::string rstrip(const std::string& text) {
    size_t end = text.size();
    while (end > 0 && is_space(text[end - 1])) --end;
    return text.substr(0, end);
  }

  static bool only_whitespace(const std::string& text) {
    for (char c : text) {
      if (!is_space(c)) return false;
    }
    return true;
  }

  void emit(TokenKind kind, std::string text, Location where) {
    tokens_.push_back({kind, std::move(text), where.line, where.column});
  }

  size_t skip_spaces(size_t pos) const {
    while (pos < source_.size() && is_space(source_[pos])) ++pos;
    return pos;
  }

  bool starts_with_at(size_t pos, const char* text) const {
    return source_.compare(pos, std::char_traits<char>::length(text), text) == 0;
  }

  // `{% raw %}` with optional whitespace and a '-' before `%}`.
  bool is_raw_begin(size_t pos) const {
    pos = skip_spaces(pos);
    if (!starts_with_at(pos, "raw")) return false;
    pos = skip_spaces(pos + 3);
    return starts_with_at(pos, "%}") || starts_with_at(pos, "-%}");
  }

  // Applies the end-of-tag rule: '-' eats all following whitespace, '+' keeps it, and a plain
  // block or comment end eats one newline (trim_blocks).
  size_t finish_tag(size_t end_pos, char sign, size_t close_length, bool trim_newline) {
    size_t pos = end_pos + close_length;
    if (sign == '-') {
      pos = skip_spaces(pos);
    } else if (sign != '+' && trim_newline && pos < source_.size() && source_[pos] == '\n') {
      ++pos;
    }
    return pos;
  }

  size_t lex_comment(size_t pos, size_t start) {
    const size_t close = source_.find("#}", pos);
    if (close == std::string::npos) fail(location_at(start), "missing end of comment tag");
    char sign = '\0';
    if (close > pos && (source_[close - 1] == '-' || source_[close - 1] == '+')) {
      sign = source_[close - 1];
    }
    return finish_tag(close, sign, 2, true);
  }

  size_t lex_raw(size_t pos, size_t start) {
    // Skip `raw` and the end of the opening tag.
    pos = skip_spaces(pos) + 3;
    pos = skip_spaces(pos);
    const char open_sign = source_[pos] == '-' ? '-' : '\0';
    pos = finish_tag(pos + (open_sign ? 1 : 0), open_sign, 2, true);
    size_t search = pos;
    while (true) {
      const size_t block = source_.find("{%", search);
      if (block == std::string::npos) fail(location_at(start), "missing end of raw directive");
      size_t p = block + 2;
      const char begin_sign = (p < source_.size() && (source_[p] == '-' || source_[p] == '+'))
                                  ? source_[p]
                                  : '\0';
      if (begin_sign) ++p;
      p = skip_spaces(p);
      if (!starts_with_at(p, "endraw")) {
        search = block + 2;
        continue;
      }
      p = skip_spaces(p + 6);
      char end_sign = '\0';
      if (source_[p] == '-' || source_[p] == '+') end_sign = source_[p++];
      if (!starts_with_at(p, "%}")) fail(location_at(block), "invalid endraw tag");
      std::string body = source_.substr(pos, block - pos);
      if (begin_sign == '-') body = rstrip(body);
      if (!body.empty()) emit(TokenKind::kText, body, location_at(pos));
      return finish_tag(p, end_sign, 2, true);
    }
  }

  size_t lex_tag(size_t pos, bool is_block, size_t start) {
    emit(is_block ? TokenKind::kBlockBegin : TokenKind::kVariableBegin, "", location_at(start));
    int depth = 0;
    while (true) {
      pos = skip_spaces(pos);
      if (pos >= source_.size()) {
        fail(location_at(start), is_block ? "unexpected end of template, expected '%}'"
                                       : "unexpected end of template, expected '}}'");
      }
      const char close = is_block ? '%' : '}';
      if (depth == 0) {
        for (char sign : {'-', '+', '\0'}) {
          const size_t p = pos + (sign ? 1 : 0);
          if (sign && source_[pos] != sign) continue;
          if (p + 1 < source_.size() && source_[p] == close && source_[p + 1] == '}') {
            emit(is_block ? TokenKind::kBlockEnd : TokenKind::kVariableEnd, "", location_at(pos));
            return finish_tag(p, sign, 2, is_block);
          }
        }
      }
      pos = lex_expression_token(pos, depth);
    }
  }

  size_t lex_expression_token(size_t pos, int& depth) {
    const Location where = location_at(pos);
    const char c = source_[pos];
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number(pos, where);
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t end = pos;
      while (end < source_.size() &&
             (std::isalnum(static_cast<unsigned char>(source_[end])) || source_[end] == '_')) {
        ++end;
      }
      emit(TokenKind::kName, source_.substr(pos, end - pos), where);
      return end;
    }
    if (c == '\'' || c == '"') {
      size_t end = pos + 1;
      while (end < source_.size() && source_[end] != c) {
        if (source_[end] == '\\') ++end;
        ++end;
      }
      if (end >= source_.size()) fail(where, "unterminated string literal");
      emit(TokenKind::kString, decode_string_literal(source_.substr(pos + 1, end - pos - 1), where),
           where);
      return end + 1;
    }
    static const char* const kOperators[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "/",
                                             "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                             "<",  ">",  "=",  ".",  ":",  "|",  ",", ";"};
    for (const char* op : kOperators) {
      if (starts_with_at(pos, op)) {
        const std::string text(op);
        if (text == "(" || text == "[" || text == "{") ++depth;
        if (text == ")" || text == "]" || text == "}") {
          if (depth == 0) fail(where, "unexpected '" + text + "'");
          --depth;
        }
        emit(TokenKind::kOperator, text, where);
        return pos + text.size();
      }
    }
    fail(where, std::string("unexpected character '") + c + "'");
  }

  size_t lex_number(size_t pos, Location where) {
    auto digits_end = [&](size_t p, bool hex) {
      while (p < source_.size() &&
             (std::isdigit(static_cast<unsigned char>(source_[p])) || source_[p] == '_' ||
              (hex && std::isxdigit(static_cast<unsigned char>(source_[p]))))) {
        ++p;
      }
      return p;
    };
    auto clean = [](std::string text) {
      std::string out;
      for (char ch : text) {
        if (ch != '_') out += ch;
      }
      return out;
    };
    if (source_[pos] == '0' && pos + 1 < source_.size() &&
        std::string("xXoObB").find(source_[pos + 1]) != std::string::npos) {
      const char base_char = static_cast<char>(std::tolower(source_[pos + 1]));
      const int base = base_char == 'x' ? 16 : (base_char == 'o' ? 8 : 2);
      const size_t end = digits_end(pos + 2, base == 16);
      const std::string digits = clean(source_.substr(pos + 2, end - pos - 2));
      emit(TokenKind::kInteger, std::to_string(std::strtoll(digits.c_str(), nullptr, base)),
           where);
      return end;
    }
    size_t end = digits_end(pos, false);
    bool is_float = false;
    if (end + 1 < source_.size() && source_[end] == '.' &&
        std::isdigit(static_cast<unsigned char>(source_[end + 1]))) {
      end = digits_end(end + 1, false);
      is_float = true;
    }
    if (end < source_.size() && (source_[end] == 'e' || source_[end] == 'E')) {
      size_t p = end + 1;
      if (p < source_.size() && (source_[p] == '+' || source_[p] == '-')) ++p;
      if (p < source_.size() && std::isdigit(static_cast<unsigned char>(source_[p]))) {
        end = digits_end(p, false);
        is_float = true;
      }
    }
    emit(is_float ? TokenKind::kFloat : TokenKind::kInteger, clean(source_.substr(pos, end - pos)),
         where);
    return end;
  }

  std::string source_;
  std::vector<Token> tokens_;
  size_t scan_pos_ = 0;
  Location scan_location_;
};

// jinja2 turns \r\n and \r into \n and, with keep_trailing_newline=False, drops one final \n.
std::string normalize_source(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Token> tokenize(const std::string& source) {
  return Lexer(normalize_source(source)).run();
}

}  // namespace mxgemma::jinja
