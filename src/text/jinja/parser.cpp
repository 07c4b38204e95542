#include "text/jinja/parser.h"

#include <cerrno>
#include <cstdlib>
#include <initializer_list>

#include "text/jinja/builtins.h"
#include "text/jinja/lexer.h"

namespace mxgemma::jinja {
namespace {

// Deeper nesting than this is rejected instead of exhausting the native stack.
constexpr int kMaxNesting = 400;

NodePtr make_node(NodeKind kind, int line) {
  auto node = std::make_unique<Node>();
  node->kind = kind;
  node->line = line;
  return node;
}

bool references_name(const Node& node, const std::string& name) {
  if (node.kind == NodeKind::kName && node.name == name) return true;
  for (const NodePtr* child : {&node.a, &node.b, &node.c}) {
    if (*child && references_name(**child, name)) return true;
  }
  for (const auto* list : {&node.items, &node.filters, &node.body, &node.else_body}) {
    for (const auto& child : *list) {
      if (child && references_name(*child, name)) return true;
    }
  }
  for (const auto* list : {&node.named, &node.params}) {
    for (const auto& [key, child] : *list) {
      if (child && references_name(*child, name)) return true;
    }
  }
  return false;
}

bool body_references(const std::vector<NodePtr>& body, const std::string& name) {
  for (const auto& node : body) {
    if (references_name(*node, name)) return true;
  }
  return false;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  std::vector<NodePtr> parse() {
    std::vector<NodePtr> body = subparse({});
    if (current().kind != TokenKind::kEnd) {
      fail("unexpected '" + current().text + "'");
    }
    return body;
  }

 private:
  const Token& current() const { return tokens_[pos_]; }
  const Token& peek(size_t offset = 1) const {
    return tokens_[std::min(pos_ + offset, tokens_.size() - 1)];
  }
  void advance() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }

  [[noreturn]] void fail(const std::string& message) const {
    const Location where{current().line, current().column};
    throw TemplateError("template syntax error at " + where.describe() + ": " + message);
  }

  static std::string describe(const Token& token) {
    switch (token.kind) {
      case TokenKind::kEnd:
        return "end of template";
      case TokenKind::kVariableEnd:
        return "end of print statement";
      case TokenKind::kBlockEnd:
        return "end of statement block";
      case TokenKind::kString:
        return "string";
      default:
        return token.text;
    }
  }

  bool at_operator(const char* op) const {
    return current().kind == TokenKind::kOperator && current().text == op;
  }
  bool at_name(const char* name) const {
    return current().kind == TokenKind::kName && current().text == name;
  }
  void expect_operator(const char* op) {
    if (!at_operator(op)) {
      fail(std::string("expected '") + op + "', got '" + describe(current()) + "'");
    }
    advance();
  }
  void expect_name(const char* name) {
    if (!at_name(name)) {
      fail(std::string("expected '") + name + "', got '" + describe(current()) + "'");
    }
    advance();
  }
  std::string expect_identifier() {
    if (current().kind != TokenKind::kName) {
      fail("expected a name, got '" + describe(current()) + "'");
    }
    std::string name = current().text;
    advance();
    return name;
  }
  void expect_block_end() {
    if (current().kind != TokenKind::kBlockEnd) {
      fail("expected end of statement block, got '" + describe(current()) + "'");
    }
    advance();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& parser) : parser_(parser) {
      if (++parser_.depth_ > kMaxNesting) parser_.fail("template nested too deeply");
    }
    ~DepthGuard() { --parser_.depth_; }
    Parser& parser_;
  };

  // Parses statements until a block tag whose name is in `end_names`; stops at its '{%'.
  std::vector<NodePtr> subparse(std::initializer_list<const char*> end_names) {
    DepthGuard guard(*this);
    std::vector<NodePtr> body;
    while (current().kind != TokenKind::kEnd) {
      const Token& token = current();
      if (token.kind == TokenKind::kText) {
        auto node = make_node(NodeKind::kText, token.line);
        node->name = token.text;
        body.push_back(std::move(node));
        advance();
      } else if (token.kind == TokenKind::kVariableBegin) {
        advance();
        auto node = make_node(NodeKind::kOutput, token.line);
        node->a = parse_tuple(true, false);
        if (current().kind != TokenKind::kVariableEnd) {
          fail("expected end of print statement, got '" + describe(current()) + "'");
        }
        advance();
        body.push_back(std::move(node));
      } else if (token.kind == TokenKind::kBlockBegin) {
        const Token& name = peek();
        if (name.kind != TokenKind::kName) {
          advance();
          fail("expected a tag name, got '" + describe(current()) + "'");
        }
        for (const char* end_name : end_names) {
          if (name.text == end_name) return body;
        }
        advance();
        body.push_back(parse_statement());
      } else {
        fail("unexpected '" + describe(token) + "'");
      }
    }
    if (end_names.size() > 0) {
      std::string expected;
      for (const char* end_name : end_names) {
        expected += (expected.empty() ? "'" : " or '") + std::string(end_name) + "'";
      }
      fail("unexpected end of template, expected " + expected);
    }
    return body;
  }

  // Consumes `{% name` of an end tag found by subparse.
  std::string take_end_tag() {
    advance();  // '{%'
    std::string name = current().text;
    advance();
    return name;
  }

  NodePtr parse_statement() {
    const Token tag = current();
    const std::string& name = tag.text;
    advance();
    if (name == "if") return parse_if(tag.line);
    if (name == "for") return parse_for(tag.line);
    if (name == "set") return parse_set(tag.line);
    if (name == "macro") return parse_macro(tag.line);
    if (name == "call") return parse_call_block(tag.line);
    if (name == "filter") return parse_filter_block(tag.line);
    if (name == "with") return parse_with(tag.line);
    if (name == "generation") {
      // Hugging Face's AssistantTracker tag: renders its body unchanged.
      expect_block_end();
      auto node = make_node(NodeKind::kScope, tag.line);
      node->body = subparse({"endgeneration"});
      take_end_tag();
      expect_block_end();
      return node;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) fail("'" + name + "' outside of a for loop");
      expect_block_end();
      return make_node(name == "break" ? NodeKind::kBreak : NodeKind::kContinue, tag.line);
    }
    fail("unknown or unsupported tag '" + name + "'");
  }

  NodePtr parse_if(int line) {
    auto node = make_node(NodeKind::kIf, line);
    node->a = parse_tuple(false, false);
    expect_block_end();
    node->body = subparse({"elif", "else", "endif"});
    const std::string end = take_end_tag();
    if (end == "elif") {
      node->else_body.push_back(parse_if(current().line));
      return node;
    }
    if (end == "else") {
      expect_block_end();
      node->else_body = subparse({"endif"});
      take_end_tag();
    }
    expect_block_end();
    return node;
  }

  std::vector<std::string> parse_target_names() {
    std::vector<std::string> names;
    const bool parenthesized = at_operator("(");
    if (parenthesized) advance();
    names.push_back(expect_identifier());
    while (at_operator(",")) {
      advance();
      if (current().kind != TokenKind::kName || at_name("in")) break;
      names.push_back(expect_identifier());
    }
    if (parenthesized) expect_operator(")");
    return names;
  }

  NodePtr parse_for(int line) {
    auto node = make_node(NodeKind::kFor, line);
    node->targets = parse_target_names();
    expect_name("in");
    node->a = parse_tuple(false, false, "recursive");
    if (at_name("if")) {
      advance();
      node->b = parse_expression(true);
    }
    if (at_name("recursive")) {
      advance();
      node->recursive = true;
    }
    expect_block_end();
    ++loop_depth_;
    node->body = subparse({"endfor", "else"});
    --loop_depth_;
    if (take_end_tag() == "else") {
      expect_block_end();
      node->else_body = subparse({"endfor"});
      take_end_tag();
    }
    expect_block_end();
    return node;
  }

  NodePtr parse_set(int line) {
    if (current().kind == TokenKind::kName && peek().kind == TokenKind::kOperator &&
        peek().text == ".") {
      // Namespace attribute assignment: {% set ns.attr = value %}.
      auto node = make_node(NodeKind::kSet, line);
      node->targets.push_back(expect_identifier());
      advance();
      node->name = expect_identifier();
      expect_operator("=");
      node->b = parse_tuple(true, false);
      expect_block_end();
      return node;
    }
    std::vector<std::string> targets = parse_target_names();
    if (at_operator("=")) {
      advance();
      auto node = make_node(NodeKind::kSet, line);
      node->targets = std::move(targets);
      node->b = parse_tuple(true, false);
      expect_block_end();
      return node;
    }
    auto node = make_node(NodeKind::kSetBlock, line);
    node->targets = std::move(targets);
    while (at_operator("|")) {
      advance();
      node->filters.push_back(parse_filter(nullptr));
    }
    expect_block_end();
    node->body = subparse({"endset"});
    take_end_tag();
    expect_block_end();
    return node;
  }

  void parse_parameters(Node& node) {
    expect_operator("(");
    while (!at_operator(")")) {
      if (!node.params.empty()) expect_operator(",");
      if (at_operator(")")) break;
      std::string name = expect_identifier();
      NodePtr default_value;
      if (at_operator("=")) {
        advance();
        default_value = parse_expression(true);
      } else if (!node.params.empty() && node.params.back().second) {
        fail("non-default argument '" + name + "' follows default argument");
      }
      node.params.emplace_back(std::move(name), std::move(default_value));
    }
    advance();
  }

  NodePtr parse_macro(int line) {
    auto node = make_node(NodeKind::kMacro, line);
    node->name = expect_identifier();
    parse_parameters(*node);
    expect_block_end();
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    node->body = subparse({"endmacro"});
    loop_depth_ = saved_loop_depth;
    node->uses_varargs = body_references(node->body, "varargs");
    node->uses_kwargs = body_references(node->body, "kwargs");
    take_end_tag();
    if (current().kind == TokenKind::kName) advance();  // {% endmacro name %}
    expect_block_end();
    return node;
  }

  NodePtr parse_call_block(int line) {
    auto node = make_node(NodeKind::kCallBlock, line);
    if (at_operator("(")) parse_parameters(*node);
    node->a = parse_expression(true);
    if (node->a->kind != NodeKind::kCall) fail("expected a call after 'call'");
    expect_block_end();
    node->body = subparse({"endcall"});
    node->uses_varargs = body_references(node->body, "varargs");
    node->uses_kwargs = body_references(node->body, "kwargs");
    take_end_tag();
    expect_block_end();
    return node;
  }

  // {% with a = 1, b = x %}...{% endwith %}; the values are evaluated in the enclosing scope.
  NodePtr parse_with(int line) {
    auto node = make_node(NodeKind::kWith, line);
    while (current().kind != TokenKind::kBlockEnd) {
      if (!node->targets.empty()) expect_operator(",");
      node->targets.push_back(expect_identifier());
      expect_operator("=");
      node->items.push_back(parse_expression(true));
    }
    expect_block_end();
    node->body = subparse({"endwith"});
    take_end_tag();
    expect_block_end();
    return node;
  }

  NodePtr parse_filter_block(int line) {
    auto node = make_node(NodeKind::kFilterBlock, line);
    node->filters.push_back(parse_filter(nullptr));
    while (at_operator("|")) {
      advance();
      node->filters.push_back(parse_filter(nullptr));
    }
    expect_block_end();
    node->body = subparse({"endfilter"});
    take_end_tag();
    expect_block_end();
    return node;
  }

  bool at_tuple_end(const char* extra_end) const {
    const TokenKind kind = current().kind;
    if (kind == TokenKind::kVariableEnd || kind == TokenKind::kBlockEnd ||
        kind == TokenKind::kEnd || at_operator(")")) {
      return true;
    }
    return extra_end && at_name(extra_end);
  }

  // A comma-separated expression list becomes a tuple, as in Python.
  NodePtr parse_tuple(bool with_condition, bool explicit_parentheses,
                      const char* extra_end = nullptr) {
    const int line = current().line;
    std::vector<NodePtr> items;
    bool saw_comma = false;
    while (true) {
      if (!items.empty()) {
        if (!at_operator(",")) break;
        advance();
        saw_comma = true;
      }
      if (at_tuple_end(extra_end)) break;
      items.push_back(parse_expression(with_condition));
    }
    if (!saw_comma) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) fail("expected an expression, got '" + describe(current()) + "'");
    }
    auto node = make_node(NodeKind::kTupleLiteral, line);
    node->items = std::move(items);
    return node;
  }

  NodePtr parse_expression(bool with_condition) {
    DepthGuard guard(*this);
    NodePtr expr = parse_or();
    if (!with_condition) return expr;
    while (at_name("if")) {
      advance();
      auto node = make_node(NodeKind::kCondition, expr->line);
      node->b = parse_or();
      if (at_name("else")) {
        advance();
        node->c = parse_expression(true);
      }
      node->a = std::move(expr);
      expr = std::move(node);
    }
    return expr;
  }

  NodePtr binary(const std::string& op, NodePtr left, NodePtr right) {
    auto node = make_node(NodeKind::kBinary, left->line);
    node->op = op;
    node->a = std::move(left);
    node->b = std::move(right);
    return node;
  }

  NodePtr parse_or() {
    NodePtr left = parse_and();
    while (at_name("or")) {
      advance();
      left = binary("or", std::move(left), parse_and());
    }
    return left;
  }

  NodePtr parse_and() {
    NodePtr left = parse_not();
    while (at_name("and")) {
      advance();
      left = binary("and", std::move(left), parse_not());
    }
    return left;
  }

  NodePtr parse_not() {
    if (at_name("not")) {
      DepthGuard guard(*this);
      auto node = make_node(NodeKind::kUnary, current().line);
      advance();
      node->op = "not";
      node->a = parse_not();
      return node;
    }
    return parse_compare();
  }

  NodePtr parse_compare() {
    NodePtr left = parse_math1();
    NodePtr node;
    while (true) {
      std::string op;
      if (current().kind == TokenKind::kOperator &&
          (current().text == "==" || current().text == "!=" || current().text == "<" ||
           current().text == "<=" || current().text == ">" || current().text == ">=")) {
        op = current().text;
        advance();
      } else if (at_name("in")) {
        op = "in";
        advance();
      } else if (at_name("not") && peek().kind == TokenKind::kName && peek().text == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      if (!node) {
        node = make_node(NodeKind::kCompare, left->line);
        node->a = std::move(left);
      }
      node->ops.push_back(op);
      node->items.push_back(parse_math1());
    }
    return node ? std::move(node) : std::move(left);
  }

  NodePtr parse_math1() {
    NodePtr left = parse_concat();
    while (at_operator("+") || at_operator("-")) {
      const std::string op = current().text;
      advance();
      left = binary(op, std::move(left), parse_concat());
    }
    return left;
  }

  NodePtr parse_concat() {
    NodePtr left = parse_math2();
    while (at_operator("~")) {
      advance();
      left = binary("~", std::move(left), parse_math2());
    }
    return left;
  }

  NodePtr parse_math2() {
    NodePtr left = parse_pow();
    while (at_operator("*") || at_operator("/") || at_operator("//") || at_operator("%")) {
      const std::string op = current().text;
      advance();
      left = binary(op, std::move(left), parse_pow());
    }
    return left;
  }

  NodePtr parse_pow() {
    NodePtr left = parse_unary(true);
    while (at_operator("**")) {
      advance();
      left = binary("**", std::move(left), parse_unary(true));
    }
    return left;
  }

  NodePtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    NodePtr node;
    if (at_operator("-") || at_operator("+")) {
      node = make_node(NodeKind::kUnary, current().line);
      node->op = current().text;
      advance();
      node->a = parse_unary(false);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expression(std::move(node));
    return node;
  }

  NodePtr parse_primary() {
    const Token token = current();
    switch (token.kind) {
      case TokenKind::kName: {
        advance();
        if (token.text == "true" || token.text == "True") return literal(Value(true), token.line);
        if (token.text == "false" || token.text == "False") {
          return literal(Value(false), token.line);
        }
        if (token.text == "none" || token.text == "None") {
          return literal(Value::none(), token.line);
        }
        auto node = make_node(NodeKind::kName, token.line);
        node->name = token.text;
        return node;
      }
      case TokenKind::kString: {
        std::string text;
        while (current().kind == TokenKind::kString) {
          text += current().text;
          advance();
        }
        return literal(Value(std::move(text)), token.line);
      }
      case TokenKind::kInteger: {
        advance();
        errno = 0;
        const long long parsed = std::strtoll(token.text.c_str(), nullptr, 10);
        if (errno == ERANGE) {
          // NOTE: Python integers are unbounded; beyond int64 this engine falls back to floats.
          return literal(Value(std::strtod(token.text.c_str(), nullptr)), token.line);
        }
        return literal(Value(static_cast<int64_t>(parsed)), token.line);
      }
      case TokenKind::kFloat:
        advance();
        return literal(Value(std::strtod(token.text.c_str(), nullptr)), token.line);
      case TokenKind::kOperator:
        if (token.text == "(") {
          advance();
          NodePtr inner = parse_tuple(true, true);
          expect_operator(")");
          return inner;
        }
        if (token.text == "[") return parse_list();
        if (token.text == "{") return parse_dict();
        break;
      default:
        break;
    }
    fail("unexpected '" + describe(token) + "'");
  }

  NodePtr literal(Value value, int line) {
    auto node = make_node(NodeKind::kLiteral, line);
    node->value = std::move(value);
    return node;
  }

  NodePtr parse_list() {
    auto node = make_node(NodeKind::kListLiteral, current().line);
    advance();
    while (!at_operator("]")) {
      if (!node->items.empty()) expect_operator(",");
      if (at_operator("]")) break;
      node->items.push_back(parse_expression(true));
    }
    advance();
    return node;
  }

  NodePtr parse_dict() {
    auto node = make_node(NodeKind::kDictLiteral, current().line);
    advance();
    while (!at_operator("}")) {
      if (!node->items.empty()) expect_operator(",");
      if (at_operator("}")) break;
      node->items.push_back(parse_expression(true));
      expect_operator(":");
      node->items.push_back(parse_expression(true));
    }
    advance();
    return node;
  }

  NodePtr parse_postfix(NodePtr node) {
    while (true) {
      if (at_operator(".")) {
        advance();
        if (current().kind == TokenKind::kInteger) {
          auto item = make_node(NodeKind::kGetItem, node->line);
          item->a = std::move(node);
          item->b = literal(Value(static_cast<int64_t>(std::stoll(current().text))),
                            current().line);
          advance();
          node = std::move(item);
          continue;
        }
        auto attr = make_node(NodeKind::kGetAttr, node->line);
        attr->name = expect_identifier();
        attr->a = std::move(node);
        node = std::move(attr);
      } else if (at_operator("[")) {
        advance();
        node = parse_subscript(std::move(node));
      } else if (at_operator("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  NodePtr parse_subscript(NodePtr target) {
    // Either a[expr] or a[start:stop:step] with any part missing.
    NodePtr parts[3];
    int part = 0;
    bool is_slice = false;
    while (!at_operator("]")) {
      if (at_operator(":")) {
        is_slice = true;
        if (++part > 2) fail("invalid slice");
        advance();
        continue;
      }
      if (parts[part]) fail("expected ']' or ':' in subscript");
      parts[part] = is_slice ? parse_expression(true) : parse_tuple(true, false);
    }
    advance();
    if (!is_slice) {
      if (!parts[0]) fail("expected an expression in subscript");
      auto node = make_node(NodeKind::kGetItem, target->line);
      node->a = std::move(target);
      node->b = std::move(parts[0]);
      return node;
    }
    auto node = make_node(NodeKind::kSlice, target->line);
    node->a = std::move(target);
    node->b = std::move(parts[0]);
    node->c = std::move(parts[1]);
    if (parts[2]) node->items.push_back(std::move(parts[2]));
    return node;
  }

  void parse_call_arguments(Node& node) {
    expect_operator("(");
    while (!at_operator(")")) {
      if (!node.items.empty() || !node.named.empty()) expect_operator(",");
      if (at_operator(")")) break;
      if (current().kind == TokenKind::kName && peek().kind == TokenKind::kOperator &&
          peek().text == "=") {
        std::string name = current().text;
        advance();
        advance();
        node.named.emplace_back(std::move(name), parse_expression(true));
      } else {
        if (!node.named.empty()) fail("positional argument follows keyword argument");
        node.items.push_back(parse_expression(true));
      }
    }
    advance();
  }

  NodePtr parse_call(NodePtr callee) {
    auto node = make_node(NodeKind::kCall, callee->line);
    node->a = std::move(callee);
    parse_call_arguments(*node);
    return node;
  }

  NodePtr parse_filter(NodePtr target) {
    auto node = make_node(NodeKind::kFilter, current().line);
    node->name = expect_identifier();
    while (at_operator(".")) {
      advance();
      node->name += "." + expect_identifier();
    }
    if (!has_filter(node->name)) fail("no filter named '" + node->name + "'");
    if (at_operator("(")) parse_call_arguments(*node);
    node->a = std::move(target);
    return node;
  }

  NodePtr parse_filter_expression(NodePtr node) {
    while (true) {
      if (at_operator("|")) {
        advance();
        node = parse_filter(std::move(node));
      } else if (at_name("is")) {
        advance();
        node = parse_test(std::move(node));
      } else if (at_operator("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  NodePtr parse_test(NodePtr target) {
    auto node = make_node(NodeKind::kTest, target->line);
    if (at_name("not")) {
      advance();
      node->negated = true;
    }
    node->name = expect_identifier();
    while (at_operator(".")) {
      advance();
      node->name += "." + expect_identifier();
    }
    if (!has_test(node->name)) fail("no test named '" + node->name + "'");
    const Token& token = current();
    if (at_operator("(")) {
      parse_call_arguments(*node);
    } else if ((token.kind == TokenKind::kName && token.text != "else" && token.text != "or" &&
                token.text != "and") ||
               token.kind == TokenKind::kString || token.kind == TokenKind::kInteger ||
               token.kind == TokenKind::kFloat || at_operator("[") || at_operator("{")) {
      // A single argument without parentheses: `is divisibleby 3`.
      node->items.push_back(parse_postfix(parse_primary()));
    }
    node->a = std::move(target);
    return node;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::vector<NodePtr> parse_template(const std::string& source) {
  return Parser(tokenize(source)).parse();
}

}  // namespace mxgemma::jinja
