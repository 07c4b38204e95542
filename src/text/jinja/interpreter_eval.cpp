// Expression evaluation of the Interpreter.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"

namespace mxgemma::jinja {

Value Interpreter::lookup(const std::string& name, const Scope& scope) const {
  for (const Scope* frame = &scope; frame != nullptr; frame = frame->parent.get()) {
    auto it = frame->vars.find(name);
    if (it != frame->vars.end()) return it->second;
  }
  auto it = globals_.find(name);
  if (it != globals_.end()) return it->second;
  return Value::undefined("'" + name + "' is undefined");
}

CallArgs Interpreter::eval_arguments(const Node& node, const std::shared_ptr<Scope>& scope) {
  CallArgs args;
  args.positional.reserve(node.items.size());
  for (const auto& item : node.items) args.positional.push_back(eval(*item, scope));
  for (const auto& [name, item] : node.named) args.named.emplace_back(name, eval(*item, scope));
  return args;
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) throw TemplateError(callee.undefined_hint());
  const Function* function = nullptr;
  if (callee.is_function()) {
    function = &callee.as_function();
  } else if (callee.is_dict() && callee.as_dict().call) {
    function = callee.as_dict().call.get();
  } else {
    throw TemplateError("'" + callee.type_name() + "' object is not callable");
  }
  const char stack_marker = 0;
  const size_t stack_used = size_t(std::abs(stack_base_ - &stack_marker));
  if (++call_depth_ > limits_.max_call_depth || stack_used > limits_.max_stack_bytes) {
    call_depth_ = 0;
    throw TemplateError("maximum call depth exceeded in '" + function->name + "' (" +
                        std::to_string(limits_.max_call_depth) + " nested calls or " +
                        std::to_string(limits_.max_stack_bytes >> 10) + " KiB of stack)");
  }
  Value result;
  try {
    result = function->fn(args);
  } catch (...) {
    if (call_depth_ > 0) --call_depth_;
    throw;
  }
  --call_depth_;
  return result;
}

Value Interpreter::apply_filters(const std::vector<NodePtr>& filters, Value value,
                                 const std::shared_ptr<Scope>& scope) {
  for (const auto& filter : filters) {
    CallArgs args = eval_arguments(*filter, scope);
    value = apply_filter(*this, filter->name, value, args);
  }
  return value;
}

bool Interpreter::eval_compare(const std::string& op, const Value& left, const Value& right) {
  if (op == "==") return left.equals(right);
  if (op == "!=") return !left.equals(right);
  if (op == "in") return contains(right, left);
  if (op == "not in") return !contains(right, left);
  const int order = compare_values(left, right);
  if (op == "<") return order < 0;
  if (op == "<=") return order <= 0;
  if (op == ">") return order > 0;
  return order >= 0;
}

Value Interpreter::eval_binary(const Node& node, const std::shared_ptr<Scope>& scope) {
  const std::string& op = node.op;
  if (op == "and") {
    Value left = eval(*node.a, scope);
    return left.truthy() ? eval(*node.b, scope) : left;
  }
  if (op == "or") {
    Value left = eval(*node.a, scope);
    return left.truthy() ? left : eval(*node.b, scope);
  }
  Value left = eval(*node.a, scope);
  Value right = eval(*node.b, scope);
  if (op == "~") return Value(left.str() + right.str());
  return arithmetic(op, left, right);
}

Value Interpreter::eval(const Node& node, const std::shared_ptr<Scope>& scope) {
  switch (node.kind) {
    case NodeKind::kLiteral:
      return node.value;
    case NodeKind::kName:
      return lookup(node.name, *scope);
    case NodeKind::kListLiteral:
    case NodeKind::kTupleLiteral: {
      std::vector<Value> items;
      items.reserve(node.items.size());
      for (const auto& item : node.items) items.push_back(eval(*item, scope));
      return node.kind == NodeKind::kListLiteral ? Value::list(std::move(items))
                                                 : Value::tuple(std::move(items));
    }
    case NodeKind::kDictLiteral: {
      Value dict = Value::dict();
      for (size_t i = 0; i + 1 < node.items.size(); i += 2) {
        dict.as_dict().set(eval(*node.items[i], scope), eval(*node.items[i + 1], scope));
      }
      return dict;
    }
    case NodeKind::kGetAttr:
      return get_attribute(eval(*node.a, scope), node.name);
    case NodeKind::kGetItem:
      return get_item(eval(*node.a, scope), eval(*node.b, scope));
    case NodeKind::kSlice: {
      Value object = eval(*node.a, scope);
      Value start = node.b ? eval(*node.b, scope) : Value::none();
      Value stop = node.c ? eval(*node.c, scope) : Value::none();
      Value step = node.items.empty() ? Value::none() : eval(*node.items[0], scope);
      return slice_value(object, start, stop, step);
    }
    case NodeKind::kCall: {
      Value callee = eval(*node.a, scope);
      CallArgs args = eval_arguments(node, scope);
      return call(callee, args);
    }
    case NodeKind::kFilter: {
      Value value = eval(*node.a, scope);
      CallArgs args = eval_arguments(node, scope);
      return apply_filter(*this, node.name, value, args);
    }
    case NodeKind::kTest: {
      Value value = eval(*node.a, scope);
      CallArgs args = eval_arguments(node, scope);
      return Value(apply_test(*this, node.name, value, args) != node.negated);
    }
    case NodeKind::kUnary: {
      Value operand = eval(*node.a, scope);
      if (node.op == "not") return Value(!operand.truthy());
      if (operand.is_undefined()) throw TemplateError(operand.undefined_hint());
      if (!operand.is_number()) {
        throw TemplateError("bad operand type for unary " + node.op + ": '" +
                            operand.type_name() + "'");
      }
      if (operand.is_float()) {
        return node.op == "+" ? operand : Value(-operand.as_double());
      }
      const int64_t integer = operand.integer_value();
      if (node.op == "+") return Value(integer);
      if (integer == INT64_MIN) throw TemplateError("integer overflow in unary '-'");
      return Value(-integer);
    }
    case NodeKind::kBinary:
      return eval_binary(node, scope);
    case NodeKind::kCompare: {
      Value left = eval(*node.a, scope);
      for (size_t i = 0; i < node.ops.size(); ++i) {
        Value right = eval(*node.items[i], scope);
        if (!eval_compare(node.ops[i], left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case NodeKind::kCondition:
      if (eval(*node.b, scope).truthy()) return eval(*node.a, scope);
      if (node.c) return eval(*node.c, scope);
      return Value::undefined("the inline if-expression evaluated to false and no else section "
                              "was defined");
    default:
      throw TemplateError("internal error: statement used as an expression");
  }
}

}  // namespace mxgemma::jinja
