// Evaluates a parsed template against a context, with jinja2's scoping rules: loops and macros
// open a scope, `if` does not, and `set` inside a loop does not leak out of it.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "text/jinja/ast.h"
#include "text/jinja/value.h"

namespace mxgemma::jinja {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};

// Limits that turn runaway templates into errors instead of crashes or hangs.
struct RenderLimits {
  size_t max_output_bytes = 100u << 20;
  int max_call_depth = 1000;
  // Native stack that nested calls may use. Recursion is stopped by whichever limit comes first:
  // frame sizes vary with the build (sanitizers make them several times larger), so a depth limit
  // alone would overflow small thread stacks.
  size_t max_stack_bytes = 1u << 20;
};

class Interpreter {
 public:
  explicit Interpreter(RenderLimits limits = {}) : limits_(limits) {}

  // Renders `body` with `context` (a dict value) as the template's variables.
  std::string render(const std::vector<NodePtr>& body, const Value& context);

  // Calls a function, macro or recursive loop object.
  Value call(const Value& callee, CallArgs& args);
  const RenderLimits& limits() const { return limits_; }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const std::vector<NodePtr>& body, const std::shared_ptr<Scope>& scope);
  Flow exec(const Node& node, const std::shared_ptr<Scope>& scope);
  void exec_for(const Node& node, const std::shared_ptr<Scope>& scope);
  void run_loop(const Node& node, const std::shared_ptr<Scope>& scope, const Value& iterable,
                int depth);
  void exec_set(const Node& node, const std::shared_ptr<Scope>& scope);
  Value make_macro(const Node& node, const std::shared_ptr<Scope>& scope);
  std::string capture(const std::vector<NodePtr>& body, const std::shared_ptr<Scope>& scope);
  void write(const std::string& text);

  Value eval(const Node& node, const std::shared_ptr<Scope>& scope);
  Value lookup(const std::string& name, const Scope& scope) const;
  Value eval_binary(const Node& node, const std::shared_ptr<Scope>& scope);
  bool eval_compare(const std::string& op, const Value& left, const Value& right);
  CallArgs eval_arguments(const Node& node, const std::shared_ptr<Scope>& scope);
  Value apply_filters(const std::vector<NodePtr>& filters, Value value,
                      const std::shared_ptr<Scope>& scope);

  // Clears the variables of every scope a macro captured, and of their parents. A macro value keeps
  // its defining scope alive, and that scope contains the macro, so without this each render would
  // leak its scopes.
  void release_macro_scopes();

  RenderLimits limits_;
  std::string* out_ = nullptr;
  const char* stack_base_ = nullptr;
  std::vector<std::shared_ptr<Scope>> macro_scopes_;
  size_t total_output_ = 0;
  int call_depth_ = 0;
  std::unordered_map<std::string, Value> globals_;
};

// Attribute access `object.name` with jinja2's rule: attribute (method) first, then item.
Value get_attribute(const Value& object, const std::string& name);
// Subscript `object[key]` with jinja2's rule: item first, then attribute.
Value get_item(const Value& object, const Value& key);
// Python slicing for str, list and tuple.
Value slice_value(const Value& object, const Value& start, const Value& stop, const Value& step);
// Python `needle in haystack`.
bool contains(const Value& haystack, const Value& needle);
// The values a `for` loop visits: list items, dict keys, characters; undefined is empty.
std::vector<Value> iterate(const Value& value);
// Python + - * / // % ** on template values.
Value arithmetic(const std::string& op, const Value& left, const Value& right);

}  // namespace mxgemma::jinja
