#include "text/jinja/interpreter.h"

#include <cmath>
#include <functional>
#include <optional>

#include "text/jinja/builtins.h"
#include "text/jinja/unicode.h"

namespace mxgemma::jinja {
namespace {

[[noreturn]] void throw_undefined(const Value& value) { throw TemplateError(value.undefined_hint()); }

std::string undefined_name_hint(const std::string& name) { return "'" + name + "' is undefined"; }

std::string object_description(const Value& object) {
  if (object.is_none()) return "None";
  return "'" + object.type_name() + " object'";
}

// NOTE: Python integers are unbounded; this engine uses int64 and reports overflow instead of
// printing a wrong number.
[[noreturn]] void throw_int_overflow(const std::string& op) {
  throw TemplateError("integer overflow in '" + op + "': the result does not fit in 64 bits");
}

int64_t python_floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// CPython's float floor division, derived from fmod so that 7 // 0.1 is 69.0 as in Python.
double python_float_floor_div(double x, double y) {
  double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0.0 && ((y < 0) != (mod < 0))) div -= 1.0;
  if (div == 0.0) return std::copysign(0.0, x / y);
  double floor_div = std::floor(div);
  if (div - floor_div > 0.5) floor_div += 1.0;
  return floor_div;
}

int64_t python_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

std::string repeat(const std::string& text, int64_t count) {
  std::string out;
  if (count <= 0) return out;
  if (text.size() * static_cast<size_t>(count) > (100u << 20)) {
    throw TemplateError("string repetition result is too large");
  }
  for (int64_t i = 0; i < count; ++i) out += text;
  return out;
}

// Python's slice.indices(): resolves start/stop/step against a sequence length.
void resolve_slice(int64_t length, const Value& start, const Value& stop, const Value& step,
                   int64_t& begin, int64_t& end, int64_t& stride) {
  auto as_index = [](const Value& v, const char* what) {
    if (!v.is_int() && !v.is_bool()) {
      throw TemplateError(std::string("slice ") + what + " must be an integer or None, not " +
                          v.type_name());
    }
    return v.integer_value();
  };
  const bool has_step = !step.is_none() && !step.is_undefined();
  stride = has_step ? as_index(step, "step") : 1;
  if (stride == 0) throw TemplateError("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t default_value) {
    if (v.is_none() || v.is_undefined()) return default_value;
    int64_t index = as_index(v, "index");
    if (index < 0) index += length;
    if (stride > 0) return std::clamp<int64_t>(index, 0, length);
    return std::clamp<int64_t>(index, -1, length - 1);
  };
  begin = clamp(start, stride > 0 ? 0 : length - 1);
  end = clamp(stop, stride > 0 ? length : -1);
}

}  // namespace

Value get_attribute(const Value& object, const std::string& name) {
  if (object.is_undefined()) throw_undefined(object);
  if (object.is_dict()) {
    const Dict& dict = object.as_dict();
    if (dict.is_namespace || dict.call) {
      if (const Value* found = dict.find(name)) return *found;
    } else {
      Value method = bound_method(object, name);
      if (!method.is_undefined()) return method;
      if (const Value* found = dict.find(name)) return *found;
    }
  } else {
    Value method = bound_method(object, name);
    if (!method.is_undefined()) return method;
    if (object.is_list()) {
      const List& list = object.as_list();
      for (size_t i = 0; i < list.field_names.size() && i < list.items.size(); ++i) {
        if (list.field_names[i] == name) return list.items[i];
      }
    }
  }
  return Value::undefined(object_description(object) + " has no attribute '" + name + "'");
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) throw_undefined(object);
  if (object.is_dict() && !object.as_dict().is_namespace) {
    if (const Value* found = object.as_dict().find(key)) return *found;
  } else if (object.is_list() || object.is_string()) {
    if (key.is_int() || key.is_bool()) {
      int64_t index = key.integer_value();
      if (object.is_list()) {
        const auto& items = object.as_list().items;
        const int64_t size = static_cast<int64_t>(items.size());
        if (index < 0) index += size;
        if (index >= 0 && index < size) return items[index];
      } else {
        const std::u32string text = utf8_decode(object.as_string());
        const int64_t size = static_cast<int64_t>(text.size());
        if (index < 0) index += size;
        if (index >= 0 && index < size) return Value(utf8_encode(text.substr(index, 1)));
      }
      return Value::undefined(object_description(object) + " has no element " + key.repr());
    }
  }
  if (key.is_string()) return get_attribute(object, key.as_string());
  return Value::undefined(object_description(object) + " has no element " + key.repr());
}

Value slice_value(const Value& object, const Value& start, const Value& stop, const Value& step) {
  if (object.is_undefined()) throw_undefined(object);
  if (object.is_string()) {
    const std::u32string text = utf8_decode(object.as_string());
    int64_t begin, end, stride;
    resolve_slice(static_cast<int64_t>(text.size()), start, stop, step, begin, end, stride);
    std::u32string out;
    for (int64_t i = begin; stride > 0 ? i < end : i > end; i += stride) out.push_back(text[i]);
    return Value(utf8_encode(out));
  }
  if (object.is_list()) {
    const auto& items = object.as_list().items;
    int64_t begin, end, stride;
    resolve_slice(static_cast<int64_t>(items.size()), start, stop, step, begin, end, stride);
    std::vector<Value> out;
    for (int64_t i = begin; stride > 0 ? i < end : i > end; i += stride) out.push_back(items[i]);
    return object.as_list().is_tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  throw TemplateError("'" + object.type_name() + "' object is not subscriptable");
}

bool contains(const Value& haystack, const Value& needle) {
  if (haystack.is_string()) {
    if (!needle.is_string()) {
      throw TemplateError("'in <string>' requires string as left operand, not " +
                          needle.type_name());
    }
    return haystack.as_string().find(needle.as_string()) != std::string::npos;
  }
  if (haystack.is_list()) {
    for (const auto& item : haystack.as_list().items) {
      if (item.equals(needle)) return true;
    }
    return false;
  }
  if (haystack.is_dict()) {
    if (needle.is_dict() || (needle.is_list() && !needle.as_list().is_tuple)) {
      throw TemplateError("unhashable type: '" + needle.type_name() + "'");
    }
    return haystack.as_dict().find(needle) != nullptr;
  }
  if (haystack.is_undefined()) return false;
  throw TemplateError("argument of type '" + haystack.type_name() + "' is not iterable");
}

std::vector<Value> iterate(const Value& value) {
  switch (value.kind()) {
    case ValueKind::kUndefined:
      return {};
    case ValueKind::kList:
      return value.as_list().items;
    case ValueKind::kDict: {
      if (value.as_dict().is_namespace) break;
      std::vector<Value> keys;
      for (const auto& entry : value.as_dict().entries) keys.push_back(entry.first);
      return keys;
    }
    case ValueKind::kString: {
      std::vector<Value> chars;
      for (char32_t c : utf8_decode(value.as_string())) chars.push_back(Value(utf8_encode({&c, 1})));
      return chars;
    }
    default:
      break;
  }
  throw TemplateError("'" + value.type_name() + "' object is not iterable");
}

Value arithmetic(const std::string& op, const Value& left, const Value& right) {
  if (op == "%" && left.is_string() && right.is_undefined()) {
    // Python formats with an Undefined operand as with an empty mapping.
    return Value(percent_format(left.as_string(), {right}, true));
  }
  if (left.is_undefined()) throw_undefined(left);
  if (right.is_undefined()) throw_undefined(right);
  if (left.is_number() && right.is_number()) {
    const bool integers = !left.is_float() && !right.is_float();
    const int64_t a = left.integer_value();
    const int64_t b = right.integer_value();
    const double x = left.as_double();
    const double y = right.as_double();
    int64_t exact = 0;
    if (op == "+") {
      if (!integers) return Value(x + y);
      if (__builtin_add_overflow(a, b, &exact)) throw_int_overflow(op);
      return Value(exact);
    }
    if (op == "-") {
      if (!integers) return Value(x - y);
      if (__builtin_sub_overflow(a, b, &exact)) throw_int_overflow(op);
      return Value(exact);
    }
    if (op == "*") {
      if (!integers) return Value(x * y);
      if (__builtin_mul_overflow(a, b, &exact)) throw_int_overflow(op);
      return Value(exact);
    }
    if (op == "/") {
      if (y == 0.0) throw TemplateError("division by zero");
      return Value(x / y);
    }
    if (op == "//") {
      if (y == 0.0) throw TemplateError("integer division or modulo by zero");
      return integers ? Value(python_floor_div(a, b)) : Value(python_float_floor_div(x, y));
    }
    if (op == "%") {
      if (y == 0.0) throw TemplateError("integer division or modulo by zero");
      if (integers) return Value(python_mod(a, b));
      double r = std::fmod(x, y);
      if (r != 0.0 && ((r < 0) != (y < 0))) r += y;
      return Value(r);
    }
    if (op == "**") {
      if (integers && b >= 0) {
        int64_t result = 1;
        for (int64_t i = 0; i < b && result != 0; ++i) {
          if (__builtin_mul_overflow(result, a, &result)) throw_int_overflow(op);
          if (result == 1 || result == -1) {
            // Powers of 1 and -1 cycle, so finish without looping over a huge exponent.
            if (a == -1 && (b - i - 1) % 2 == 1) result = -result;
            break;
          }
        }
        return Value(result);
      }
      return Value(std::pow(x, y));
    }
  }
  if (op == "+" && left.is_string() && right.is_string()) {
    if (left.is_markup() || right.is_markup()) {
      const std::string head = left.is_markup() ? left.as_string() : html_escape(left.as_string());
      const std::string tail =
          right.is_markup() ? right.as_string() : html_escape(right.as_string());
      return Value::markup(head + tail);
    }
    return Value(left.as_string() + right.as_string());
  }
  if (op == "+" && left.is_list() && right.is_list()) {
    std::vector<Value> items = left.as_list().items;
    for (const auto& item : right.as_list().items) items.push_back(item);
    return left.as_list().is_tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  if (op == "*" && (left.is_string() || left.is_list()) && (right.is_int() || right.is_bool())) {
    const int64_t count = right.integer_value();
    if (left.is_string()) return Value(repeat(left.as_string(), count));
    std::vector<Value> items;
    for (int64_t i = 0; i < count; ++i) {
      for (const auto& item : left.as_list().items) items.push_back(item);
      if (items.size() > kMaxSequenceLength) {
        throw TemplateError("list repetition result is longer than " +
                            std::to_string(kMaxSequenceLength) + " items");
      }
    }
    return left.as_list().is_tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  if (op == "*" && (right.is_string() || right.is_list()) && (left.is_int() || left.is_bool())) {
    return arithmetic(op, right, left);
  }
  if (op == "%" && left.is_string()) {
    if (right.is_list() && right.as_list().is_tuple) {
      return Value(percent_format(left.as_string(), right.as_list().items));
    }
    // Python treats a dict or list operand as a mapping, which may leave its values unused.
    const bool mapping = right.is_dict() || right.is_list();
    return Value(percent_format(left.as_string(), {right}, mapping));
  }
  throw TemplateError("unsupported operand type(s) for " + op + ": '" + left.type_name() +
                      "' and '" + right.type_name() + "'");
}

std::string Interpreter::render(const std::vector<NodePtr>& body, const Value& context) {
  auto root = std::make_shared<Scope>();
  for (const char* name : {"range", "dict", "namespace", "raise_exception", "strftime_now",
                           "cycler", "joiner"}) {
    Value fn = global_function(name);
    if (!fn.is_undefined()) globals_[name] = fn;
  }
  for (const auto& [key, value] : context.as_dict().entries) {
    root->vars[key.as_string()] = value;
  }
  std::string output;
  out_ = &output;
  total_output_ = 0;
  call_depth_ = 0;
  const char stack_marker = 0;
  stack_base_ = &stack_marker;
  try {
    exec_body(body, root);
  } catch (...) {
    release_macro_scopes();
    throw;
  }
  release_macro_scopes();
  return output;
}

void Interpreter::release_macro_scopes() {
  for (const std::shared_ptr<Scope>& scope : macro_scopes_) {
    for (Scope* level = scope.get(); level != nullptr; level = level->parent.get()) level->vars.clear();
  }
  macro_scopes_.clear();
}

void Interpreter::write(const std::string& text) {
  total_output_ += text.size();
  if (total_output_ > limits_.max_output_bytes) {
    throw TemplateError("template output exceeds " + std::to_string(limits_.max_output_bytes) +
                        " bytes");
  }
  out_->append(text);
}

std::string Interpreter::capture(const std::vector<NodePtr>& body,
                                 const std::shared_ptr<Scope>& scope) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  try {
    exec_body(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buffer;
}

Interpreter::Flow Interpreter::exec_body(const std::vector<NodePtr>& body,
                                         const std::shared_ptr<Scope>& scope) {
  for (const auto& node : body) {
    const Flow flow = exec(*node, scope);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Node& node, const std::shared_ptr<Scope>& scope) {
  try {
    switch (node.kind) {
      case NodeKind::kText:
        write(node.name);
        return Flow::kNormal;
      case NodeKind::kOutput:
        write(eval(*node.a, scope).str());
        return Flow::kNormal;
      case NodeKind::kIf:
        return eval(*node.a, scope).truthy() ? exec_body(node.body, scope)
                                             : exec_body(node.else_body, scope);
      case NodeKind::kFor:
        exec_for(node, scope);
        return Flow::kNormal;
      case NodeKind::kSet:
        exec_set(node, scope);
        return Flow::kNormal;
      case NodeKind::kSetBlock: {
        Value value = apply_filters(node.filters, Value(capture(node.body, scope)), scope);
        scope->vars[node.targets[0]] = value;
        return Flow::kNormal;
      }
      case NodeKind::kMacro:
        scope->vars[node.name] = make_macro(node, scope);
        return Flow::kNormal;
      case NodeKind::kCallBlock: {
        const Node& call_node = *node.a;
        Value callee = eval(*call_node.a, scope);
        CallArgs args = eval_arguments(call_node, scope);
        args.named.emplace_back("caller", make_macro(node, scope));
        write(call(callee, args).str());
        return Flow::kNormal;
      }
      case NodeKind::kFilterBlock: {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope;
        write(apply_filters(node.filters, Value(capture(node.body, inner)), scope).str());
        return Flow::kNormal;
      }
      case NodeKind::kScope:
        return exec_body(node.body, scope);
      case NodeKind::kWith: {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope;
        for (size_t i = 0; i < node.targets.size(); ++i) {
          inner->vars[node.targets[i]] = eval(*node.items[i], scope);
        }
        return exec_body(node.body, inner);
      }
      case NodeKind::kBreak:
        return Flow::kBreak;
      case NodeKind::kContinue:
        return Flow::kContinue;
      default:
        throw TemplateError("internal error: expression used as a statement");
    }
  } catch (const TemplateError& error) {
    const std::string message = error.what();
    if (message.rfind("template ", 0) == 0) throw;
    throw TemplateError("template error at line " + std::to_string(node.line) + ": " + message);
  }
}

void Interpreter::exec_set(const Node& node, const std::shared_ptr<Scope>& scope_ptr) {
  Scope& scope = *scope_ptr;
  Value value = eval(*node.b, scope_ptr);
  if (!node.name.empty()) {
    Value target = lookup(node.targets[0], scope);
    if (!target.is_dict() || !target.as_dict().is_namespace) {
      throw TemplateError("cannot assign attribute on non-namespace object '" + node.targets[0] +
                          "'");
    }
    target.as_dict().set(Value(node.name), std::move(value));
    return;
  }
  if (node.targets.size() == 1) {
    scope.vars[node.targets[0]] = std::move(value);
    return;
  }
  std::vector<Value> items = iterate(value);
  if (items.size() != node.targets.size()) {
    throw TemplateError("cannot unpack " + std::to_string(items.size()) + " values into " +
                        std::to_string(node.targets.size()) + " names");
  }
  for (size_t i = 0; i < items.size(); ++i) scope.vars[node.targets[i]] = items[i];
}

Value Interpreter::make_macro(const Node& node, const std::shared_ptr<Scope>& scope) {
  macro_scopes_.push_back(scope);
  const bool uses_varargs = node.uses_varargs;
  const bool uses_kwargs = node.uses_kwargs;
  const Node* macro = &node;
  const std::string name = node.kind == NodeKind::kMacro ? node.name : "caller";
  Value fn = Value::function(name, [this, macro, scope, uses_varargs, uses_kwargs,
                                    name](CallArgs& args) -> Value {
    auto local = std::make_shared<Scope>();
    local->parent = scope;
    const auto& params = macro->params;
    if (args.positional.size() > params.size() && !uses_varargs) {
      throw TemplateError("macro '" + name + "' takes not more than " +
                          std::to_string(params.size()) + " argument(s)");
    }
    std::vector<bool> bound(params.size(), false);
    for (size_t i = 0; i < params.size() && i < args.positional.size(); ++i) {
      local->vars[params[i].first] = args.positional[i];
      bound[i] = true;
    }
    Value kwargs = Value::dict();
    for (auto& [key, value] : args.named) {
      bool matched = false;
      for (size_t i = 0; i < params.size(); ++i) {
        if (params[i].first == key) {
          if (bound[i]) {
            throw TemplateError("macro '" + name + "' got multiple values for argument '" + key +
                                "'");
          }
          local->vars[key] = value;
          bound[i] = true;
          matched = true;
        }
      }
      if (matched) continue;
      if (key == "caller") {
        local->vars["caller"] = value;
      } else if (uses_kwargs) {
        kwargs.as_dict().set(Value(key), value);
      } else {
        throw TemplateError("macro '" + name + "' takes no keyword argument '" + key + "'");
      }
    }
    for (size_t i = 0; i < params.size(); ++i) {
      if (bound[i]) continue;
      local->vars[params[i].first] = params[i].second
                                         ? eval(*params[i].second, local)
                                         : Value::undefined(undefined_name_hint(params[i].first));
    }
    std::vector<Value> extra;
    for (size_t i = params.size(); i < args.positional.size(); ++i) {
      extra.push_back(args.positional[i]);
    }
    local->vars["varargs"] = Value::tuple(std::move(extra));
    local->vars["kwargs"] = kwargs;
    return Value(capture(macro->body, local));
  });
  return fn;
}

void Interpreter::exec_for(const Node& node, const std::shared_ptr<Scope>& scope) {
  Value iterable = eval(*node.a, scope);
  run_loop(node, scope, iterable, 1);
}

void Interpreter::run_loop(const Node& node, const std::shared_ptr<Scope>& scope,
                           const Value& iterable, int depth) {
  if (iterable.is_none()) throw TemplateError("'NoneType' object is not iterable");
  std::vector<Value> items = iterate(iterable);
  auto loop_scope = std::make_shared<Scope>();
  loop_scope->parent = scope;

  auto bind_targets = [&](const Value& item) {
    if (node.targets.size() == 1) {
      loop_scope->vars[node.targets[0]] = item;
      return;
    }
    std::vector<Value> parts = iterate(item);
    if (parts.size() != node.targets.size()) {
      throw TemplateError("cannot unpack " + std::to_string(parts.size()) + " values into " +
                          std::to_string(node.targets.size()) + " loop variables");
    }
    for (size_t i = 0; i < parts.size(); ++i) loop_scope->vars[node.targets[i]] = parts[i];
  };

  if (node.b) {
    // The loop filter runs before iteration so that loop.length counts only kept items.
    std::vector<Value> kept;
    for (const auto& item : items) {
      bind_targets(item);
      if (eval(*node.b, loop_scope).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_body(node.else_body, scope);
    return;
  }

  // Like jinja2's LoopContext, one loop object advances through the iterations.
  const int64_t length = static_cast<int64_t>(items.size());
  auto index = std::make_shared<int64_t>(0);
  Value loop = Value::dict();
  Dict& fields = loop.as_dict();
  for (const char* name : {"index", "index0", "revindex", "revindex0", "first", "last",
                           "previtem", "nextitem"}) {
    fields.entries.emplace_back(Value(name), Value());
  }
  fields.entries.emplace_back(Value("length"), Value(length));
  fields.entries.emplace_back(Value("depth"), Value(static_cast<int64_t>(depth)));
  fields.entries.emplace_back(Value("depth0"), Value(static_cast<int64_t>(depth - 1)));
  fields.entries.emplace_back(Value("cycle"), Value::function("cycle", [index](CallArgs& args) {
                                if (args.positional.empty()) {
                                  throw TemplateError("no items for cycling given");
                                }
                                return args.positional[*index % args.positional.size()];
                              }));
  // loop.changed(*values) is true on its first call and whenever its arguments differ from the
  // previous call's, as in jinja2's LoopContext.
  auto last_changed = std::make_shared<std::optional<std::vector<Value>>>();
  fields.entries.emplace_back(
      Value("changed"), Value::function("changed", [last_changed](CallArgs& args) {
        bool same = last_changed->has_value() &&
                    (*last_changed)->size() == args.positional.size();
        for (size_t i = 0; same && i < args.positional.size(); ++i) {
          same = (**last_changed)[i].equals(args.positional[i]);
        }
        if (same) return Value(false);
        *last_changed = args.positional;
        return Value(true);
      }));
  // The call slot also makes attribute lookup on the loop read its fields before dict methods.
  fields.call = std::make_shared<Function>();
  fields.call->name = "loop";
  if (node.recursive) {
    fields.call->fn = [this, &node, scope, depth](CallArgs& args) -> Value {
      if (args.positional.size() != 1) throw TemplateError("loop() takes one argument");
      std::string buffer;
      std::string* saved = out_;
      out_ = &buffer;
      try {
        run_loop(node, scope, args.positional[0], depth + 1);
      } catch (...) {
        out_ = saved;
        throw;
      }
      out_ = saved;
      return Value(buffer);
    };
  } else {
    fields.call->fn = [](CallArgs&) -> Value {
      throw TemplateError("loop() can only be called in a recursive for loop");
    };
  }
  loop_scope->vars["loop"] = loop;

  for (int64_t i = 0; i < length; ++i) {
    *index = i;
    auto& entries = fields.entries;
    entries[0].second = Value(i + 1);
    entries[1].second = Value(i);
    entries[2].second = Value(length - i);
    entries[3].second = Value(length - i - 1);
    entries[4].second = Value(i == 0);
    entries[5].second = Value(i == length - 1);
    entries[6].second = i > 0 ? items[i - 1] : Value::undefined("there is no previous item");
    entries[7].second = i + 1 < length ? items[i + 1] : Value::undefined("there is no next item");
    bind_targets(items[i]);
    const Flow flow = exec_body(node.body, loop_scope);
    if (flow == Flow::kBreak) break;
  }
}

}  // namespace mxgemma::jinja
