#include "text/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "text/jinja/unicode.h"
#include "util/json_depth.h"

namespace mxgemma::jinja {

Value Value::undefined(std::string hint) {
  Value v;
  v.string_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = ValueKind::kNone;
  return v;
}

Value::Value(bool b) : kind_(ValueKind::kBool), bool_(b) {}
Value::Value(int64_t i) : kind_(ValueKind::kInt), int_(i) {}
Value::Value(double f) : kind_(ValueKind::kFloat), float_(f) {}
Value::Value(std::string s)
    : kind_(ValueKind::kString), string_(std::make_shared<const std::string>(std::move(s))) {}

Value Value::markup(std::string s) {
  Value v(std::move(s));
  v.markup_ = true;
  return v;
}

Value Value::list(std::vector<Value> items) {
  Value v;
  v.kind_ = ValueKind::kList;
  v.list_ = std::make_shared<List>();
  v.list_->items = std::move(items);
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.list_->is_tuple = true;
  return v;
}

Value Value::dict() {
  Value v;
  v.kind_ = ValueKind::kDict;
  v.dict_ = std::make_shared<Dict>();
  return v;
}

Value Value::function(std::string name, std::function<Value(CallArgs&)> fn) {
  Value v;
  v.kind_ = ValueKind::kFunction;
  v.function_ = std::make_shared<Function>();
  v.function_->name = std::move(name);
  v.function_->fn = std::move(fn);
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& json) {
  // Values nest by recursion here and in the renderer, so deep input is an error, not a crash.
  if (json_deeper_than(json, kMaxJsonDepth)) {
    throw TemplateError("template variables nest arrays and objects more than " + std::to_string(kMaxJsonDepth) +
                        " levels deep");
  }
  return from_json_unchecked(json);
}

Value Value::from_json_unchecked(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null:
      return none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = json.get<uint64_t>();
      // NOTE: integers beyond int64 become floats; Python would keep them exact.
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(json.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json_unchecked(item));
      return list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value v = dict();
      v.dict_->entries.reserve(json.size());
      for (auto it = json.begin(); it != json.end(); ++it) {
        v.dict_->entries.emplace_back(Value(it.key()), from_json_unchecked(it.value()));
      }
      return v;
    }
    default:
      throw TemplateError("unsupported JSON value of type " + std::string(json.type_name()));
  }
}

bool Value::is_callable() const {
  return is_function() || (is_dict() && dict_->call != nullptr);
}

double Value::as_double() const {
  if (is_float()) return float_;
  if (is_int()) return static_cast<double>(int_);
  return bool_ ? 1.0 : 0.0;
}

bool Value::same_object(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case ValueKind::kList:
      return list_ == other.list_;
    case ValueKind::kDict:
      return dict_ == other.dict_;
    case ValueKind::kFunction:
      return function_ == other.function_;
    default:
      return equals(other);
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return false;
    case ValueKind::kBool:
      return bool_;
    case ValueKind::kInt:
      return int_ != 0;
    case ValueKind::kFloat:
      return float_ != 0.0;
    case ValueKind::kString:
      return !string_->empty();
    case ValueKind::kList:
      // A Python generator is true even when it yields nothing.
      return list_->is_generator || !list_->items.empty();
    case ValueKind::kDict:
      return dict_->is_namespace || dict_->call || !dict_->entries.empty();
    case ValueKind::kFunction:
      return true;
  }
  return false;
}

std::string format_python_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0.0) return std::signbit(value) ? "-0.0" : "0.0";

  // Shortest round-trip digits, read back as sign, digit string and decimal exponent.
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  std::string scientific(buffer, result.ptr);
  bool negative = scientific[0] == '-';
  if (negative) scientific.erase(0, 1);
  const size_t e_pos = scientific.find('e');
  std::string digits = scientific.substr(0, e_pos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exponent = std::atoi(scientific.c_str() + e_pos + 1);
  // decimal_point: digits d1 d2 ... represent 0.d1d2... * 10^decimal_point.
  const int decimal_point = exponent + 1;

  std::string out = negative ? "-" : "";
  if (decimal_point > -4 && decimal_point <= 16) {
    if (decimal_point <= 0) {
      out += "0." + std::string(-decimal_point, '0') + digits;
    } else if (static_cast<size_t>(decimal_point) >= digits.size()) {
      out += digits + std::string(decimal_point - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, decimal_point) + "." + digits.substr(decimal_point);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exponent_text[16];
  std::snprintf(exponent_text, sizeof(exponent_text), "e%c%02d", exponent < 0 ? '-' : '+',
                std::abs(exponent));
  return out + exponent_text;
}

namespace {

// Python's repr of a str: single quotes unless the text has ' and no ".
std::string repr_string(const std::string& text) {
  const bool has_single = text.find('\'') != std::string::npos;
  const bool has_double = text.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : utf8_decode(text)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0) || c == 0xAD) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\x%02x", static_cast<unsigned>(c));
      out += escape;
    } else {
      utf8_append(out, c);
    }
  }
  out += quote;
  return out;
}

}  // namespace

std::string Value::str() const {
  switch (kind_) {
    case ValueKind::kUndefined:
      return "";
    case ValueKind::kString:
      return *string_;
    default:
      return repr();
  }
}

std::string Value::repr() const {
  switch (kind_) {
    case ValueKind::kUndefined:
      return "Undefined";  // repr(jinja2.Undefined()), as in a printed list
    case ValueKind::kNone:
      return "None";
    case ValueKind::kBool:
      return bool_ ? "True" : "False";
    case ValueKind::kInt:
      return std::to_string(int_);
    case ValueKind::kFloat:
      return format_python_float(float_);
    case ValueKind::kString:
      return repr_string(*string_);
    case ValueKind::kList: {
      std::string out = list_->is_tuple ? "(" : "[";
      for (size_t i = 0; i < list_->items.size(); ++i) {
        if (i > 0) out += ", ";
        out += list_->items[i].repr();
      }
      if (list_->is_tuple && list_->items.size() == 1) out += ",";
      out += list_->is_tuple ? ")" : "]";
      return out;
    }
    case ValueKind::kDict: {
      std::string out = dict_->is_namespace ? "<Namespace {" : "{";
      for (size_t i = 0; i < dict_->entries.size(); ++i) {
        if (i > 0) out += ", ";
        out += dict_->entries[i].first.repr() + ": " + dict_->entries[i].second.repr();
      }
      out += dict_->is_namespace ? "}>" : "}";
      return out;
    }
    case ValueKind::kFunction:
      return "<function " + function_->name + ">";
  }
  return "";
}

bool Value::equals(const Value& other) const {
  if (is_number() && other.is_number()) {
    if (is_float() || other.is_float()) return as_double() == other.as_double();
    return integer_value() == other.integer_value();
  }
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return true;
    case ValueKind::kString:
      return *string_ == *other.string_;
    case ValueKind::kList: {
      if (list_->is_tuple != other.list_->is_tuple) return false;
      if (list_->items.size() != other.list_->items.size()) return false;
      for (size_t i = 0; i < list_->items.size(); ++i) {
        if (!list_->items[i].equals(other.list_->items[i])) return false;
      }
      return true;
    }
    case ValueKind::kDict: {
      if (dict_ == other.dict_) return true;
      if (dict_->is_namespace || other.dict_->is_namespace) return false;
      if (dict_->entries.size() != other.dict_->entries.size()) return false;
      for (const auto& [key, value] : dict_->entries) {
        const Value* found = other.dict_->find(key);
        if (!found || !found->equals(value)) return false;
      }
      return true;
    }
    case ValueKind::kFunction:
      return function_ == other.function_;
    default:
      return false;
  }
}

std::string Value::type_name() const {
  switch (kind_) {
    case ValueKind::kUndefined:
      return "Undefined";
    case ValueKind::kNone:
      return "NoneType";
    case ValueKind::kBool:
      return "bool";
    case ValueKind::kInt:
      return "int";
    case ValueKind::kFloat:
      return "float";
    case ValueKind::kString:
      return "str";
    case ValueKind::kList:
      return list_->is_tuple ? "tuple" : "list";
    case ValueKind::kDict:
      return dict_->is_namespace ? "Namespace" : "dict";
    case ValueKind::kFunction:
      return "function";
  }
  return "object";
}

const Value* Dict::find(const Value& key) const {
  for (const auto& entry : entries) {
    if (entry.first.equals(key)) return &entry.second;
  }
  return nullptr;
}

const Value* Dict::find(const std::string& key) const {
  for (const auto& entry : entries) {
    if (entry.first.is_string() && entry.first.as_string() == key) return &entry.second;
  }
  return nullptr;
}

void Dict::set(const Value& key, Value value) {
  for (auto& entry : entries) {
    if (entry.first.equals(key)) {
      entry.second = std::move(value);
      return;
    }
  }
  entries.emplace_back(key, std::move(value));
}

int compare_values(const Value& left, const Value& right) {
  if (left.is_number() && right.is_number()) {
    if (left.is_float() || right.is_float()) {
      const double a = left.as_double();
      const double b = right.as_double();
      return a < b ? -1 : (a > b ? 1 : 0);
    }
    const int64_t a = left.integer_value();
    const int64_t b = right.integer_value();
    return a < b ? -1 : (a > b ? 1 : 0);
  }
  if (left.is_string() && right.is_string()) {
    // UTF-8 byte order equals code point order, which is what Python compares.
    const int c = left.as_string().compare(right.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (left.is_list() && right.is_list() &&
      left.as_list().is_tuple == right.as_list().is_tuple) {
    const auto& a = left.as_list().items;
    const auto& b = right.as_list().items;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (!a[i].equals(b[i])) return compare_values(a[i], b[i]);
    }
    return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
  }
  if (left.is_undefined() || right.is_undefined()) {
    throw TemplateError(left.is_undefined() ? left.undefined_hint() : right.undefined_hint());
  }
  throw TemplateError("'<' not supported between instances of '" + left.type_name() + "' and '" +
                      right.type_name() + "'");
}

namespace {

void append_json_string(std::string& out, const std::string& text, bool ensure_ascii) {
  out += '"';
  for (char32_t c : utf8_decode(text)) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default: {
        char escape[16];
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
          if (c >= 0x10000) {
            const char32_t v = c - 0x10000;
            std::snprintf(escape, sizeof(escape), "\\u%04x\\u%04x",
                          static_cast<unsigned>(0xD800 + (v >> 10)),
                          static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
          } else {
            std::snprintf(escape, sizeof(escape), "\\u%04x", static_cast<unsigned>(c));
          }
          out += escape;
        } else {
          utf8_append(out, c);
        }
      }
    }
  }
  out += '"';
}

void append_json(std::string& out, const Value& value, const JsonOptions& options, int depth) {
  if (depth > 500) throw TemplateError("tojson: value nested too deeply");
  const bool pretty = options.indent >= 0 || !options.indent_text.empty();
  const std::string& item_separator = options.item_separator;
  auto newline = [&](int level) {
    out += '\n';
    for (int i = 0; i < level; ++i) out += options.indent_text;
  };
  switch (value.kind()) {
    case ValueKind::kNone:
      out += "null";
      return;
    case ValueKind::kBool:
      out += value.as_bool() ? "true" : "false";
      return;
    case ValueKind::kInt:
      out += std::to_string(value.as_int());
      return;
    case ValueKind::kFloat: {
      const double f = value.as_double();
      if (std::isnan(f)) {
        out += "NaN";
      } else if (std::isinf(f)) {
        out += f > 0 ? "Infinity" : "-Infinity";
      } else {
        out += format_python_float(f);
      }
      return;
    }
    case ValueKind::kString:
      append_json_string(out, value.as_string(), options.ensure_ascii);
      return;
    case ValueKind::kList: {
      if (value.as_list().is_generator) {
        throw TemplateError("tojson: Object of type generator is not JSON serializable");
      }
      const auto& items = value.as_list().items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += item_separator;
        if (pretty) newline(depth + 1);
        append_json(out, items[i], options, depth + 1);
      }
      if (pretty) newline(depth);
      out += ']';
      return;
    }
    case ValueKind::kDict: {
      std::vector<const std::pair<Value, Value>*> entries;
      for (const auto& entry : value.as_dict().entries) entries.push_back(&entry);
      if (options.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) {
          return compare_values(a->first, b->first) < 0;
        });
      }
      if (entries.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i > 0) out += item_separator;
        if (pretty) newline(depth + 1);
        const Value& key = entries[i]->first;
        // json.dumps converts non-string keys with their JSON spelling.
        if (key.is_string()) {
          append_json_string(out, key.as_string(), options.ensure_ascii);
        } else if (key.is_number() || key.is_none()) {
          std::string key_text;
          append_json(key_text, key, options, depth + 1);
          append_json_string(out, key_text, options.ensure_ascii);
        } else {
          throw TemplateError("tojson: keys must be str, int, float, bool or None, not " +
                              key.type_name());
        }
        out += options.key_separator;
        append_json(out, entries[i]->second, options, depth + 1);
      }
      if (pretty) newline(depth);
      out += '}';
      return;
    }
    case ValueKind::kUndefined:
      throw TemplateError("tojson: Object of type Undefined is not JSON serializable");
    case ValueKind::kFunction:
      throw TemplateError("tojson: Object of type function is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& value, const JsonOptions& options) {
  JsonOptions resolved = options;
  const bool pretty = options.indent >= 0 || !options.indent_text.empty();
  if (options.indent >= 0) resolved.indent_text = std::string(options.indent, ' ');
  if (!options.custom_item_separator) resolved.item_separator = pretty ? "," : ", ";
  std::string out;
  append_json(out, value, resolved, 0);
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace mxgemma::jinja
