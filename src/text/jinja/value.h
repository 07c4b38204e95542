// Runtime values of the Jinja engine, modelled on the Python objects jinja2 works with: undefined,
// None, bool, int, float, str, list/tuple, dict (insertion-ordered), and callables.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mxgemma::jinja {

// Longest list that range() or list repetition may build, so a template cannot exhaust memory.
// Python has no such limit; chat templates stay far below it.
constexpr size_t kMaxSequenceLength = 1'000'000;

// Raised for every template error (syntax, undefined access, type errors, raise_exception).
class TemplateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ValueKind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };

class Value;
struct List;
struct Dict;
struct Function;

// Positional and keyword arguments of a call, in source order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
};

class Value {
 public:
  Value() = default;  // undefined
  static Value undefined(std::string hint);
  static Value none();
  Value(bool b);  // NOLINT: implicit like Python's literals
  Value(int64_t i);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double f);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  // A string marked safe (markupsafe.Markup, from the safe and escape filters): `+` with a plain
  // string HTML-escapes the plain side, as Markup.__add__ and __radd__ do.
  static Value markup(std::string s);
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict();
  static Value function(std::string name, std::function<Value(CallArgs&)> fn);
  // Throws TemplateError for input nested more than kMaxJsonDepth levels.
  static Value from_json(const nlohmann::ordered_json& json);

  ValueKind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == ValueKind::kUndefined; }
  bool is_none() const { return kind_ == ValueKind::kNone; }
  bool is_bool() const { return kind_ == ValueKind::kBool; }
  bool is_int() const { return kind_ == ValueKind::kInt; }
  bool is_float() const { return kind_ == ValueKind::kFloat; }
  // Python's numbers.Number, which includes bool.
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind_ == ValueKind::kString; }
  bool is_markup() const { return markup_; }
  bool is_list() const { return kind_ == ValueKind::kList; }
  bool is_dict() const { return kind_ == ValueKind::kDict; }
  bool is_function() const { return kind_ == ValueKind::kFunction; }
  bool is_callable() const;

  bool as_bool() const { return bool_; }
  // An int, or a bool as 0 or 1 (Python's bool is an int subclass).
  int64_t integer_value() const { return is_bool() ? (bool_ ? 1 : 0) : int_; }
  int64_t as_int() const { return int_; }
  double as_double() const;  // for any number
  const std::string& as_string() const { return *string_; }
  // For undefined values: the message an access through it reports.
  const std::string& undefined_hint() const { return *string_; }
  List& as_list() const { return *list_; }
  Dict& as_dict() const { return *dict_; }
  Function& as_function() const { return *function_; }
  bool same_object(const Value& other) const;

  bool truthy() const;
  // Python str(): what `{{ value }}` prints (undefined prints nothing).
  std::string str() const;
  // Python repr(), used inside printed containers.
  std::string repr() const;
  // Python ==.
  bool equals(const Value& other) const;
  std::string type_name() const;

 private:
  static Value from_json_unchecked(const nlohmann::ordered_json& json);
  ValueKind kind_ = ValueKind::kUndefined;
  bool bool_ = false;
  bool markup_ = false;
  int64_t int_ = 0;
  double float_ = 0.0;
  std::shared_ptr<const std::string> string_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> function_;
};

struct List {
  std::vector<Value> items;
  bool is_tuple = false;
  // The result of map, select, reject, selectattr or rejectattr, which jinja2 returns as a Python
  // generator: iterable and always true, but with no len() and not JSON serializable.
  // NOTE: a Python generator is exhausted after one pass and has no items by index, but this list
  // can be iterated again and indexed.
  bool is_generator = false;
  // Attribute names of a Python namedtuple, one per item (groupby's (grouper, list) pairs).
  std::vector<std::string> field_names;
};

// A dict keeps Python's insertion order. Lookups are linear because template dicts are small.
struct Dict {
  std::vector<std::pair<Value, Value>> entries;
  // jinja2's namespace() object: attributes can be assigned with `set ns.attr = ...`.
  bool is_namespace = false;
  // Set on loop objects: `loop(items)` recurses in a `for ... recursive` loop, and the slot also
  // makes attribute lookup read the loop's fields before dict methods.
  std::shared_ptr<Function> call;

  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  void set(const Value& key, Value value);
};

struct Function {
  std::string name;
  std::function<Value(CallArgs&)> fn;
};

// Python float repr: the shortest string that round-trips, fixed notation for exponents in
// [-4, 16), scientific with a two-digit exponent otherwise, always with a '.' or 'e'.
std::string format_python_float(double value);

// Python-style three-way compare for <, <=, > and >=. Throws TemplateError for unorderable types.
int compare_values(const Value& left, const Value& right);

// json.dumps as Hugging Face's tojson filter calls it (ensure_ascii=False by default).
struct JsonOptions {
  int indent = -1;  // negative: single line
  std::string indent_text;
  bool sort_keys = false;
  bool ensure_ascii = false;
  std::string item_separator;  // defaults to ", " or "," with indent
  std::string key_separator = ": ";
  bool custom_item_separator = false;
};
std::string to_json(const Value& value, const JsonOptions& options);

// markupsafe.escape of text: & < > " ' become &amp; &lt; &gt; &#34; &#39;.
std::string html_escape(const std::string& text);

}  // namespace mxgemma::jinja
