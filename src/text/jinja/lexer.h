// Splits template source into tokens the way jinja2's lexer does with trim_blocks,
// lstrip_blocks and keep_trailing_newline=False.
#pragma once

#include <string>
#include <vector>

namespace mxgemma::jinja {

enum class TokenKind {
  kText,
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInteger,
  kFloat,
  kOperator,
  kEnd,
};

// The start of a token in the template source: line and column, both 1-based. Columns count
// characters, not bytes.
struct Location {
  int line = 1;
  int column = 1;
  std::string describe() const { return "line " + std::to_string(line) + ", column " + std::to_string(column); }
};

struct Token {
  TokenKind kind;
  std::string text;  // decoded value for strings, digits without '_' for numbers
  int line;
  int column;
};

// Throws TemplateError naming the line and column of an unterminated tag, comment or string.
std::vector<Token> tokenize(const std::string& source);

}  // namespace mxgemma::jinja
