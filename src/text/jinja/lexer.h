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

struct Token {
  TokenKind kind;
  std::string text;  // decoded value for strings, digits without '_' for numbers
  int line;
};

// Throws TemplateError naming the line of an unterminated tag, comment or string.
std::vector<Token> tokenize(const std::string& source);

}  // namespace mxgemma::jinja
