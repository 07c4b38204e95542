// The jinja2 builtin filters chat templates use, with Hugging Face's tojson.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/unicode.h"

namespace mxgemma::jinja {
namespace {

using FilterFn = Value (*)(Interpreter&, const Value&, CallArgs&);

// Reads argument `index` (after the filtered value) given positionally or as `name=`.
const Value* find_argument(const CallArgs& args, size_t index, const char* name) {
  if (index < args.positional.size()) return &args.positional[index];
  for (const auto& [key, value] : args.named) {
    if (key == name) return &value;
  }
  return nullptr;
}

Value argument(const CallArgs& args, size_t index, const char* name, Value fallback) {
  const Value* found = find_argument(args, index, name);
  return found ? *found : fallback;
}

int64_t int_argument(const CallArgs& args, size_t index, const char* name, int64_t fallback) {
  const Value* found = find_argument(args, index, name);
  if (!found) return fallback;
  if (found->is_int()) return found->as_int();
  if (found->is_bool()) return found->as_bool();
  if (found->is_float()) return static_cast<int64_t>(found->as_double());
  throw TemplateError(std::string("argument '") + name + "' must be an integer, not " +
                      found->type_name());
}

bool bool_argument(const CallArgs& args, size_t index, const char* name, bool fallback) {
  const Value* found = find_argument(args, index, name);
  return found ? found->truthy() : fallback;
}

std::string string_argument(const CallArgs& args, size_t index, const char* name,
                            const std::string& fallback) {
  const Value* found = find_argument(args, index, name);
  return found ? found->str() : fallback;
}

// jinja2's attribute getter: "a.b.0" walks items and attributes.
Value get_path(const Value& value, const Value& path) {
  if (path.is_int()) return get_item(value, path);
  Value current = value;
  const std::string& text = path.as_string();
  size_t start = 0;
  while (start <= text.size()) {
    const size_t dot = text.find('.', start);
    const std::string part = text.substr(start, dot == std::string::npos ? dot : dot - start);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    current = numeric ? get_item(current, Value(static_cast<int64_t>(std::stoll(part))))
                      : get_item(current, Value(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return current;
}

// Sort key of jinja2's sort/dictsort/unique/min/max: strings compare lowercased unless
// case_sensitive.
Value sort_key(const Value& value, bool case_sensitive) {
  if (!case_sensitive && value.is_string()) return Value(to_lower(value.as_string()));
  return value;
}

std::vector<Value> sequence_of(const Value& value) { return iterate(value); }

Value filter_abs(Interpreter&, const Value& value, CallArgs&) {
  if (value.is_float()) return Value(std::fabs(value.as_double()));
  if (value.is_int()) return Value(value.as_int() < 0 ? -value.as_int() : value.as_int());
  if (value.is_bool()) return Value(int64_t{value.as_bool()});
  throw TemplateError("bad operand type for abs(): '" + value.type_name() + "'");
}

Value filter_attr(Interpreter&, const Value& value, CallArgs& args) {
  return get_attribute(value, string_argument(args, 0, "name", ""));
}

Value filter_batch(Interpreter&, const Value& value, CallArgs& args) {
  const int64_t size = int_argument(args, 0, "linecount", 1);
  if (size <= 0) throw TemplateError("batch size must be positive");
  const Value* fill = find_argument(args, 1, "fill_with");
  std::vector<Value> batches;
  std::vector<Value> current;
  for (const auto& item : sequence_of(value)) {
    current.push_back(item);
    if (static_cast<int64_t>(current.size()) == size) {
      batches.push_back(Value::list(std::move(current)));
      current.clear();
    }
  }
  if (!current.empty()) {
    if (fill && !fill->is_none()) {
      while (static_cast<int64_t>(current.size()) < size) current.push_back(*fill);
    }
    batches.push_back(Value::list(std::move(current)));
  }
  return Value::list(std::move(batches));
}

Value filter_capitalize(Interpreter&, const Value& value, CallArgs&) {
  return Value(to_capitalize(value.str()));
}

Value filter_center(Interpreter&, const Value& value, CallArgs& args) {
  const std::string text = value.str();
  const int64_t width = int_argument(args, 0, "width", 80);
  const int64_t length = static_cast<int64_t>(utf8_length(text));
  if (width <= length) return Value(text);
  // Python str.center puts an odd leftover space on the right, or on the left for an odd width.
  const int64_t pad = width - length;
  const int64_t left = pad / 2 + (pad & width & 1);
  return Value(std::string(left, ' ') + text + std::string(pad - left, ' '));
}

Value filter_default(Interpreter&, const Value& value, CallArgs& args) {
  const Value fallback = argument(args, 0, "default_value", Value(std::string()));
  const bool boolean = bool_argument(args, 1, "boolean", false);
  if (value.is_undefined() || (boolean && !value.truthy())) return fallback;
  return value;
}

Value filter_dictsort(Interpreter&, const Value& value, CallArgs& args) {
  if (!value.is_dict()) throw TemplateError("dictsort: expected a mapping, got " +
                                            value.type_name());
  const bool case_sensitive = bool_argument(args, 0, "case_sensitive", false);
  const std::string by = string_argument(args, 1, "by", "key");
  const bool reverse = bool_argument(args, 2, "reverse", false);
  if (by != "key" && by != "value") {
    throw TemplateError("dictsort: 'by' must be 'key' or 'value'");
  }
  std::vector<Value> pairs;
  for (const auto& [key, item] : value.as_dict().entries) pairs.push_back(Value::tuple({key, item}));
  const size_t position = by == "key" ? 0 : 1;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& a, const Value& b) {
    const int order = compare_values(sort_key(a.as_list().items[position], case_sensitive),
                                     sort_key(b.as_list().items[position], case_sensitive));
    return reverse ? order > 0 : order < 0;
  });
  return Value::list(std::move(pairs));
}

// jinja2's escape returns Markup and leaves Markup unchanged, so text is never escaped twice.
Value filter_escape(Interpreter&, const Value& value, CallArgs&) {
  if (value.is_markup()) return value;
  return Value::markup(html_escape(value.str()));
}

Value filter_forceescape(Interpreter&, const Value& value, CallArgs&) {
  return Value::markup(html_escape(value.str()));
}

Value filter_first(Interpreter&, const Value& value, CallArgs&) {
  std::vector<Value> items = sequence_of(value);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value filter_last(Interpreter&, const Value& value, CallArgs&) {
  std::vector<Value> items = sequence_of(value);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

bool parse_python_float(const std::string& raw, double& out) {
  const std::string text = strip(raw, true, true, nullptr);
  if (text.empty()) return false;
  std::string cleaned;
  for (char c : text) {
    if (c != '_') cleaned += c;
  }
  char* end = nullptr;
  out = std::strtod(cleaned.c_str(), &end);
  return end == cleaned.c_str() + cleaned.size();
}

Value filter_float(Interpreter&, const Value& value, CallArgs& args) {
  const Value fallback = argument(args, 0, "default", Value(0.0));
  if (value.is_undefined()) throw TemplateError(value.undefined_hint());
  if (value.is_number()) return Value(value.as_double());
  double parsed = 0.0;
  if (value.is_string() && parse_python_float(value.as_string(), parsed)) return Value(parsed);
  return fallback;
}

Value filter_int(Interpreter&, const Value& value, CallArgs& args) {
  const Value fallback = argument(args, 0, "default", Value(int64_t{0}));
  const int64_t base = int_argument(args, 1, "base", 10);
  if (value.is_undefined()) throw TemplateError(value.undefined_hint());
  if (value.is_int()) return value;
  if (value.is_bool()) return Value(int64_t{value.as_bool()});
  if (value.is_float()) return Value(static_cast<int64_t>(value.as_double()));
  if (!value.is_string()) return fallback;
  std::string text = strip(value.as_string(), true, true, nullptr);
  std::string digits;
  for (char c : text) {
    if (c != '_') digits += c;
  }
  int parse_base = static_cast<int>(base);
  size_t offset = (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) ? 1 : 0;
  if (digits.size() > offset + 1 && digits[offset] == '0') {
    const char prefix = static_cast<char>(std::tolower(digits[offset + 1]));
    const int prefix_base = prefix == 'x' ? 16 : (prefix == 'o' ? 8 : (prefix == 'b' ? 2 : 0));
    if (prefix_base != 0 && (parse_base == prefix_base || parse_base == 0)) {
      digits.erase(offset, 2);
      parse_base = prefix_base;
    }
  }
  if (parse_base == 0) parse_base = 10;
  char* end = nullptr;
  if (!digits.empty()) {
    const long long parsed = std::strtoll(digits.c_str(), &end, parse_base);
    if (end == digits.c_str() + digits.size()) return Value(static_cast<int64_t>(parsed));
  }
  // jinja2 falls back to int(float(value)) for strings such as "3.5".
  double parsed_float = 0.0;
  if (base == 10 && parse_python_float(text, parsed_float) && std::isfinite(parsed_float)) {
    return Value(static_cast<int64_t>(parsed_float));
  }
  return fallback;
}

Value filter_format(Interpreter&, const Value& value, CallArgs& args) {
  return Value(percent_format(value.str(), args.positional));
}

Value filter_indent(Interpreter&, const Value& value, CallArgs& args) {
  const Value* width_arg = find_argument(args, 0, "width");
  std::string indentation = "    ";
  if (width_arg) {
    indentation = width_arg->is_string() ? width_arg->as_string()
                                         : std::string(int_argument(args, 0, "width", 4), ' ');
  }
  const bool first = bool_argument(args, 1, "first", false);
  const bool blank = bool_argument(args, 2, "blank", false);
  // jinja2 appends a newline before splitting, so a trailing newline is kept.
  std::string text = value.str() + "\n";
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t newline = text.find('\n', start);
    lines.push_back(text.substr(start, newline - start));
    start = newline + 1;
  }
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += "\n";
      if (blank || !lines[i].empty()) out += indentation;
    }
    out += lines[i];
  }
  if (first) out = indentation + out;
  return Value(out);
}

Value filter_items(Interpreter&, const Value& value, CallArgs&) {
  if (value.is_undefined()) return Value::list();
  if (!value.is_dict()) throw TemplateError("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  for (const auto& [key, item] : value.as_dict().entries) pairs.push_back(Value::tuple({key, item}));
  return Value::list(std::move(pairs));
}

Value filter_join(Interpreter&, const Value& value, CallArgs& args) {
  const std::string separator = string_argument(args, 0, "d", "");
  const Value* attribute = find_argument(args, 1, "attribute");
  std::string out;
  bool first = true;
  for (const auto& item : sequence_of(value)) {
    if (!first) out += separator;
    first = false;
    out += attribute ? get_path(item, *attribute).str() : item.str();
  }
  return Value(out);
}

Value filter_length(Interpreter&, const Value& value, CallArgs&) {
  switch (value.kind()) {
    case ValueKind::kUndefined:
      return Value(int64_t{0});
    case ValueKind::kString:
      return Value(static_cast<int64_t>(utf8_length(value.as_string())));
    case ValueKind::kList:
      if (value.as_list().is_generator) {
        throw TemplateError("object of type 'generator' has no len(); apply '| list' first");
      }
      return Value(static_cast<int64_t>(value.as_list().items.size()));
    case ValueKind::kDict:
      return Value(static_cast<int64_t>(value.as_dict().entries.size()));
    default:
      throw TemplateError("object of type '" + value.type_name() + "' has no len()");
  }
}

Value filter_list(Interpreter&, const Value& value, CallArgs&) {
  return Value::list(sequence_of(value));
}

Value filter_lower(Interpreter&, const Value& value, CallArgs&) {
  return Value(to_lower(value.str()));
}

Value filter_upper(Interpreter&, const Value& value, CallArgs&) {
  return Value(to_upper(value.str()));
}

// Marks a filter result as a jinja2 generator (see List::is_generator).
Value generator_of(std::vector<Value> items) {
  Value result = Value::list(std::move(items));
  result.as_list().is_generator = true;
  return result;
}

Value filter_map(Interpreter& interpreter, const Value& value, CallArgs& args) {
  std::vector<Value> out;
  // jinja2 maps nothing over a falsy value (none, empty), so none | map(...) is empty.
  if (!value.truthy()) return generator_of({});
  const Value* attribute = nullptr;
  for (const auto& [key, item] : args.named) {
    if (key == "attribute") attribute = &item;
  }
  if (attribute) {
    const Value* fallback = nullptr;
    for (const auto& [key, item] : args.named) {
      if (key == "default") fallback = &item;
    }
    for (const auto& item : sequence_of(value)) {
      Value mapped = get_path(item, *attribute);
      out.push_back(mapped.is_undefined() && fallback ? *fallback : mapped);
    }
    return generator_of(std::move(out));
  }
  if (args.positional.empty()) throw TemplateError("map: expected a filter name or attribute=");
  const std::string name = args.positional[0].str();
  if (!has_filter(name)) throw TemplateError("No filter named '" + name + "'.");
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.named = args.named;
  for (const auto& item : sequence_of(value)) {
    CallArgs copy = rest;
    out.push_back(apply_filter(interpreter, name, item, copy));
  }
  return generator_of(std::move(out));
}

Value extreme(const Value& value, CallArgs& args, bool want_max) {
  const bool case_sensitive = bool_argument(args, 0, "case_sensitive", false);
  const Value* attribute = find_argument(args, 1, "attribute");
  std::vector<Value> items = sequence_of(value);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    const Value a = sort_key(attribute ? get_path(items[i], *attribute) : items[i],
                             case_sensitive);
    const Value b = sort_key(attribute ? get_path(items[best], *attribute) : items[best],
                             case_sensitive);
    const int order = compare_values(a, b);
    if (want_max ? order > 0 : order < 0) best = i;
  }
  return items[best];
}

Value filter_max(Interpreter&, const Value& value, CallArgs& args) {
  return extreme(value, args, true);
}

Value filter_min(Interpreter&, const Value& value, CallArgs& args) {
  return extreme(value, args, false);
}

Value select_items(Interpreter& interpreter, const Value& value, CallArgs& args,
                   bool by_attribute, bool keep_matches) {
  // As with map, jinja2 selects nothing from a falsy value, without checking the arguments.
  if (!value.truthy()) return generator_of({});
  size_t next = 0;
  const Value* attribute = nullptr;
  if (by_attribute) {
    if (args.positional.empty()) throw TemplateError("selectattr: missing attribute name");
    attribute = &args.positional[next++];
  }
  std::string test;
  if (next < args.positional.size()) test = args.positional[next++].str();
  if (!test.empty() && !has_test(test)) throw TemplateError("No test named '" + test + "'.");
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<long>(next),
                              args.positional.end());
  test_args.named = args.named;
  std::vector<Value> out;
  for (const auto& item : sequence_of(value)) {
    const Value subject = attribute ? get_path(item, *attribute) : item;
    bool matched;
    if (test.empty()) {
      matched = subject.truthy();
    } else {
      CallArgs copy = test_args;
      matched = apply_test(interpreter, test, subject, copy);
    }
    if (matched == keep_matches) out.push_back(item);
  }
  return generator_of(std::move(out));
}

Value filter_select(Interpreter& i, const Value& v, CallArgs& a) {
  return select_items(i, v, a, false, true);
}
Value filter_reject(Interpreter& i, const Value& v, CallArgs& a) {
  return select_items(i, v, a, false, false);
}
Value filter_selectattr(Interpreter& i, const Value& v, CallArgs& a) {
  return select_items(i, v, a, true, true);
}
Value filter_rejectattr(Interpreter& i, const Value& v, CallArgs& a) {
  return select_items(i, v, a, true, false);
}

}  // namespace

std::string replace_text(const std::string& text, const std::string& old_text,
                         const std::string& new_text, int64_t count) {
  std::string out;
  if (old_text.empty()) {
    // Python inserts the replacement around every character.
    int64_t done = 0;
    const std::u32string chars = utf8_decode(text);
    for (size_t i = 0; i <= chars.size(); ++i) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      if (i < chars.size()) utf8_append(out, chars[i]);
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t found = text.find(old_text, start);
    if (found == std::string::npos) break;
    out.append(text, start, found - start);
    out += new_text;
    start = found + old_text.size();
    ++done;
  }
  out.append(text, start, std::string::npos);
  return out;
}

namespace {

Value filter_replace(Interpreter&, const Value& value, CallArgs& args) {
  return Value(replace_text(value.str(), string_argument(args, 0, "old", ""),
                           string_argument(args, 1, "new", ""), int_argument(args, 2, "count", -1)));
}

Value filter_reverse(Interpreter&, const Value& value, CallArgs&) {
  if (value.is_string()) {
    std::u32string text = utf8_decode(value.as_string());
    std::reverse(text.begin(), text.end());
    return Value(utf8_encode(text));
  }
  std::vector<Value> items = sequence_of(value);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

// Python round(x, n): rounds the exact binary value half to even. glibc's printf rounds the
// exact value the same way, so 2.675 (stored as 2.67499...) becomes 2.67 as in Python.
double python_round(double value, int64_t precision) {
  if (!std::isfinite(value)) return value;
  if (precision < 0) {
    const double scale = std::pow(10.0, static_cast<double>(-precision));
    return std::nearbyint(value / scale) * scale;
  }
  const int digits = static_cast<int>(std::min<int64_t>(precision, 400));
  const int size = std::snprintf(nullptr, 0, "%.*f", digits, value);
  std::string text(static_cast<size_t>(size) + 1, '\0');
  std::snprintf(text.data(), text.size(), "%.*f", digits, value);
  return std::strtod(text.c_str(), nullptr);
}

Value filter_round(Interpreter&, const Value& value, CallArgs& args) {
  const int64_t precision = int_argument(args, 0, "precision", 0);
  const std::string method = string_argument(args, 1, "method", "common");
  if (value.is_undefined()) throw TemplateError(value.undefined_hint());
  if (!value.is_number()) throw TemplateError("round: expected a number, got " + value.type_name());
  const double number = value.as_double();
  const double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "common" && !value.is_float()) {
    // Python's round() keeps ints (and bools) as ints.
    if (precision >= 0) return Value(value.integer_value());
    return Value(static_cast<int64_t>(python_round(number, precision)));
  }
  if (method == "common") return Value(python_round(number, precision));
  if (method == "ceil") return Value(std::ceil(number * scale) / scale);
  if (method == "floor") return Value(std::floor(number * scale) / scale);
  throw TemplateError("round: method must be 'common', 'ceil' or 'floor'");
}

Value filter_safe(Interpreter&, const Value& value, CallArgs&) {
  return value.is_markup() ? value : Value::markup(value.str());
}

Value filter_sort(Interpreter&, const Value& value, CallArgs& args) {
  const bool reverse = bool_argument(args, 0, "reverse", false);
  const bool case_sensitive = bool_argument(args, 1, "case_sensitive", false);
  const Value* attribute = find_argument(args, 2, "attribute");
  std::vector<Value> items = sequence_of(value);
  std::vector<Value> keys;
  for (const auto& item : items) {
    keys.push_back(sort_key(attribute ? get_path(item, *attribute) : item, case_sensitive));
  }
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int c = compare_values(keys[a], keys[b]);
    return reverse ? c > 0 : c < 0;
  });
  std::vector<Value> sorted;
  for (size_t index : order) sorted.push_back(items[index]);
  return Value::list(std::move(sorted));
}

// groupby(attribute, default=none, case_sensitive=false): sorts by the attribute, then returns one
// (grouper, list) namedtuple per distinct value. Without case_sensitive, strings group lowercased
// and the grouper keeps the spelling of the group's first item, as in jinja2 3.1.
Value filter_groupby(Interpreter&, const Value& value, CallArgs& args) {
  const Value* attribute = find_argument(args, 0, "attribute");
  if (attribute == nullptr) throw TemplateError("groupby: missing the attribute to group by");
  const Value* fallback = find_argument(args, 1, "default");
  const bool case_sensitive = bool_argument(args, 2, "case_sensitive", false);
  auto attribute_of = [&](const Value& item) {
    Value found = get_path(item, *attribute);
    return found.is_undefined() && fallback != nullptr ? *fallback : found;
  };

  std::vector<Value> items = sequence_of(value);
  std::vector<Value> keys;
  for (const auto& item : items) keys.push_back(sort_key(attribute_of(item), case_sensitive));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return compare_values(keys[a], keys[b]) < 0; });

  std::vector<Value> groups;
  for (size_t position = 0; position < order.size();) {
    const Value& key = keys[order[position]];
    std::vector<Value> members;
    size_t next = position;
    while (next < order.size() && keys[order[next]].equals(key)) {
      members.push_back(items[order[next]]);
      ++next;
    }
    Value group = Value::tuple({attribute_of(members.front()), Value::list(std::move(members))});
    group.as_list().field_names = {"grouper", "list"};
    groups.push_back(group);
    position = next;
  }
  return Value::list(std::move(groups));
}

Value filter_string(Interpreter&, const Value& value, CallArgs&) { return Value(value.str()); }

Value filter_sum(Interpreter&, const Value& value, CallArgs& args) {
  const Value* attribute = find_argument(args, 0, "attribute");
  Value total = argument(args, 1, "start", Value(int64_t{0}));
  for (const auto& item : sequence_of(value)) {
    total = arithmetic("+", total, attribute ? get_path(item, *attribute) : item);
  }
  return total;
}

Value filter_title(Interpreter&, const Value& value, CallArgs&) {
  // jinja2 starts a word after '-', whitespace or an opening bracket, unlike str.title().
  const std::u32string text = utf8_decode(value.str());
  std::string out;
  bool word_start = true;
  for (char32_t c : text) {
    const bool separator = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' ||
                           is_python_space(c);
    std::string one = utf8_encode(std::u32string(1, c));
    if (separator) {
      out += one;
      word_start = true;
    } else {
      out += word_start ? to_upper(one) : to_lower(one);
      word_start = false;
    }
  }
  return Value(out);
}

Value filter_tojson(Interpreter&, const Value& value, CallArgs& args) {
  JsonOptions options;
  options.ensure_ascii = bool_argument(args, 0, "ensure_ascii", false);
  if (const Value* indent = find_argument(args, 1, "indent"); indent && !indent->is_none()) {
    if (indent->is_string()) {
      options.indent_text = indent->as_string();
      options.indent = -1;
      if (options.indent_text.empty()) options.indent = 0;
    } else {
      options.indent = static_cast<int>(std::max<int64_t>(0, int_argument(args, 1, "indent", 0)));
    }
  }
  if (const Value* separators = find_argument(args, 2, "separators");
      separators && !separators->is_none()) {
    const std::vector<Value> parts = iterate(*separators);
    if (parts.size() != 2) throw TemplateError("tojson: separators must be a pair");
    options.item_separator = parts[0].str();
    options.key_separator = parts[1].str();
    options.custom_item_separator = true;
  }
  options.sort_keys = bool_argument(args, 3, "sort_keys", false);
  return Value(to_json(value, options));
}

Value filter_trim(Interpreter&, const Value& value, CallArgs& args) {
  const Value* chars = find_argument(args, 0, "chars");
  if (chars && !chars->is_none()) {
    const std::string set = chars->str();
    return Value(strip(value.str(), true, true, &set));
  }
  return Value(strip(value.str(), true, true, nullptr));
}

Value filter_truncate(Interpreter&, const Value& value, CallArgs& args) {
  const std::string text = value.str();
  const int64_t length = int_argument(args, 0, "length", 255);
  const bool killwords = bool_argument(args, 1, "killwords", false);
  const std::string end = string_argument(args, 2, "end", "...");
  const int64_t leeway = int_argument(args, 3, "leeway", 5);
  const std::u32string chars = utf8_decode(text);
  const int64_t end_length = static_cast<int64_t>(utf8_length(end));
  if (length < end_length) throw TemplateError("expected length >= " + std::to_string(end_length));
  if (static_cast<int64_t>(chars.size()) <= length + leeway) return Value(text);
  std::u32string head = chars.substr(0, length - end_length);
  if (!killwords) {
    const size_t space = head.rfind(U' ');
    if (space != std::u32string::npos) head = head.substr(0, space);
  }
  return Value(utf8_encode(head) + end);
}

Value filter_unique(Interpreter&, const Value& value, CallArgs& args) {
  const bool case_sensitive = bool_argument(args, 0, "case_sensitive", false);
  const Value* attribute = find_argument(args, 1, "attribute");
  std::vector<Value> seen;
  std::vector<Value> out;
  for (const auto& item : sequence_of(value)) {
    const Value key = sort_key(attribute ? get_path(item, *attribute) : item, case_sensitive);
    bool duplicate = false;
    for (const auto& previous : seen) {
      if (previous.equals(key)) {
        duplicate = true;
        break;
      }
    }
    if (duplicate) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value filter_wordcount(Interpreter&, const Value& value, CallArgs&) {
  int64_t count = 0;
  bool in_word = false;
  for (char32_t c : utf8_decode(value.str())) {
    const bool word = is_word_char(c);
    if (word && !in_word) ++count;
    in_word = word;
  }
  return Value(count);
}

const std::map<std::string, FilterFn>& filter_table() {
  static const std::map<std::string, FilterFn> table = {
      {"abs", filter_abs},
      {"attr", filter_attr},
      {"batch", filter_batch},
      {"capitalize", filter_capitalize},
      {"center", filter_center},
      {"count", filter_length},
      {"d", filter_default},
      {"default", filter_default},
      {"dictsort", filter_dictsort},
      {"e", filter_escape},
      {"escape", filter_escape},
      {"first", filter_first},
      {"groupby", filter_groupby},
      {"float", filter_float},
      {"forceescape", filter_forceescape},
      {"format", filter_format},
      {"indent", filter_indent},
      {"int", filter_int},
      {"items", filter_items},
      {"join", filter_join},
      {"last", filter_last},
      {"length", filter_length},
      {"list", filter_list},
      {"lower", filter_lower},
      {"map", filter_map},
      {"max", filter_max},
      {"min", filter_min},
      {"reject", filter_reject},
      {"rejectattr", filter_rejectattr},
      {"replace", filter_replace},
      {"reverse", filter_reverse},
      {"round", filter_round},
      {"safe", filter_safe},
      {"select", filter_select},
      {"selectattr", filter_selectattr},
      {"sort", filter_sort},
      {"string", filter_string},
      {"sum", filter_sum},
      {"title", filter_title},
      {"tojson", filter_tojson},
      {"trim", filter_trim},
      {"truncate", filter_truncate},
      {"unique", filter_unique},
      {"upper", filter_upper},
      {"wordcount", filter_wordcount},
  };
  return table;
}

}  // namespace

bool has_filter(const std::string& name) { return filter_table().count(name) > 0; }

Value apply_filter(Interpreter& interpreter, const std::string& name, const Value& value,
                   CallArgs& args) {
  auto it = filter_table().find(name);
  if (it == filter_table().end()) throw TemplateError("no filter named '" + name + "'");
  return it->second(interpreter, value, args);
}

}  // namespace mxgemma::jinja
