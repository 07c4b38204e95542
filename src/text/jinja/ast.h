// Syntax tree of a parsed template: expressions and statements share one node type.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/value.h"

namespace mxgemma::jinja {

enum class NodeKind {
  // Expressions.
  kLiteral,      // value
  kName,         // name
  kListLiteral,  // items
  kTupleLiteral, // items
  kDictLiteral,  // items as key, value pairs
  kGetAttr,      // a.name
  kGetItem,      // a[b]
  kSlice,        // a[b:c:d]; missing parts are null
  kCall,         // a(items, named)
  kFilter,       // a | name(items, named); a is null inside a filter block
  kTest,         // a is [not] name(items, named); negated
  kUnary,        // op a: "-", "+", "not"
  kBinary,       // a op b: + - * / // % ** ~ and or
  kCompare,      // a ops[i] items[i]...
  kCondition,    // a if b else c
  // Statements.
  kText,          // name is the text
  kOutput,        // {{ a }}
  kIf,            // a: condition, body, else_body (elif is nested in else_body)
  kFor,           // targets, a: iterable, b: filter, body, else_body, recursive
  kSet,           // targets, b: value; for `set ns.attr`, targets[0] is ns and name is attr
  kSetBlock,      // targets, body, filters
  kMacro,         // name, params, body
  kCallBlock,     // a: call expression, params, body
  kFilterBlock,   // filters, body
  kBreak,
  kContinue,
  kScope,         // body; {% generation %} and plain groups
  kWith,          // targets, items: values, body; a scope with its own variables
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Node {
  NodeKind kind;
  int line = 0;
  Value value;
  std::string name;
  std::string op;
  bool negated = false;
  bool recursive = false;
  // Macro and call-block bodies that read `varargs` / `kwargs` accept extra arguments.
  bool uses_varargs = false;
  bool uses_kwargs = false;
  NodePtr a, b, c;
  std::vector<NodePtr> items;
  std::vector<std::pair<std::string, NodePtr>> named;
  std::vector<std::string> ops;
  std::vector<std::string> targets;
  std::vector<std::pair<std::string, NodePtr>> params;  // macro parameters with defaults
  std::vector<NodePtr> filters;                         // kFilter nodes with a == null
  std::vector<NodePtr> body;
  std::vector<NodePtr> else_body;
};

}  // namespace mxgemma::jinja
