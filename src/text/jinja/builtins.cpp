// Tests (`is name`), global functions, printf-style formatting and the str, list and dict
// methods templates call.
#include "text/jinja/builtins.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>

#include "text/jinja/interpreter.h"
#include "text/jinja/unicode.h"

namespace mxgemma::jinja {
namespace {

using TestFn = bool (*)(const Value&, CallArgs&);

const Value& test_argument(const CallArgs& args, const char* test) {
  if (args.positional.empty()) {
    throw TemplateError(std::string("test '") + test + "' requires an argument");
  }
  return args.positional[0];
}

int64_t integer_of(const Value& value, const char* test) {
  if (value.is_int()) return value.as_int();
  if (value.is_bool()) return value.as_bool();
  if (value.is_float() && std::floor(value.as_double()) == value.as_double()) {
    return static_cast<int64_t>(value.as_double());
  }
  if (value.is_undefined()) throw TemplateError(value.undefined_hint());
  throw TemplateError(std::string("test '") + test + "' expects a number, got " +
                      value.type_name());
}

bool test_defined(const Value& v, CallArgs&) { return !v.is_undefined(); }
bool test_undefined(const Value& v, CallArgs&) { return v.is_undefined(); }
bool test_none(const Value& v, CallArgs&) { return v.is_none(); }
bool test_boolean(const Value& v, CallArgs&) { return v.is_bool(); }
bool test_true(const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool test_false(const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool test_integer(const Value& v, CallArgs&) { return v.is_int(); }
bool test_float(const Value& v, CallArgs&) { return v.is_float(); }
bool test_number(const Value& v, CallArgs&) { return v.is_number(); }
bool test_string(const Value& v, CallArgs&) { return v.is_string(); }
bool test_mapping(const Value& v, CallArgs&) { return v.is_dict() && !v.as_dict().is_namespace; }
// jinja2's Undefined defines __len__, __getitem__, __iter__ and __call__, so it passes the
// sequence, iterable and callable tests.
bool test_sequence(const Value& v, CallArgs&) {
  return v.is_string() || v.is_list() || v.is_undefined() ||
         (v.is_dict() && !v.as_dict().is_namespace);
}
bool test_iterable(const Value& v, CallArgs& a) { return test_sequence(v, a); }
bool test_callable(const Value& v, CallArgs&) { return v.is_callable() || v.is_undefined(); }
// Python's `value % 2`, which also works for floats (2.5 % 2 == 0.5).
double python_mod2(const Value& v, const char* test) {
  if (v.is_float()) {
    double r = std::fmod(v.as_double(), 2.0);
    if (r < 0) r += 2.0;
    return r;
  }
  return static_cast<double>(((integer_of(v, test) % 2) + 2) % 2);
}
bool test_odd(const Value& v, CallArgs&) { return python_mod2(v, "odd") == 1.0; }
bool test_even(const Value& v, CallArgs&) { return python_mod2(v, "even") == 0.0; }
bool test_divisibleby(const Value& v, CallArgs& a) {
  const int64_t divisor = integer_of(test_argument(a, "divisibleby"), "divisibleby");
  if (divisor == 0) throw TemplateError("integer division or modulo by zero");
  return integer_of(v, "divisibleby") % divisor == 0;
}
bool test_eq(const Value& v, CallArgs& a) { return v.equals(test_argument(a, "eq")); }
bool test_ne(const Value& v, CallArgs& a) { return !v.equals(test_argument(a, "ne")); }
bool test_lt(const Value& v, CallArgs& a) { return compare_values(v, test_argument(a, "lt")) < 0; }
bool test_le(const Value& v, CallArgs& a) { return compare_values(v, test_argument(a, "le")) <= 0; }
bool test_gt(const Value& v, CallArgs& a) { return compare_values(v, test_argument(a, "gt")) > 0; }
bool test_ge(const Value& v, CallArgs& a) { return compare_values(v, test_argument(a, "ge")) >= 0; }
bool test_in(const Value& v, CallArgs& a) { return contains(test_argument(a, "in"), v); }
bool test_sameas(const Value& v, CallArgs& a) { return v.same_object(test_argument(a, "sameas")); }
bool test_lower(const Value& v, CallArgs&) {
  if (!v.is_string()) return false;
  bool cased = false;
  for (char32_t c : utf8_decode(v.as_string())) {
    if (is_cased_upper(c)) return false;
    cased = cased || is_cased_lower(c);
  }
  return cased;
}
bool test_upper(const Value& v, CallArgs&) {
  if (!v.is_string()) return false;
  bool cased = false;
  for (char32_t c : utf8_decode(v.as_string())) {
    if (is_cased_lower(c)) return false;
    cased = cased || is_cased_upper(c);
  }
  return cased;
}

const std::map<std::string, TestFn>& test_table() {
  static const std::map<std::string, TestFn> table = {
      {"defined", test_defined},   {"undefined", test_undefined}, {"none", test_none},
      {"boolean", test_boolean},   {"true", test_true},           {"false", test_false},
      {"integer", test_integer},   {"float", test_float},         {"number", test_number},
      {"string", test_string},     {"mapping", test_mapping},     {"sequence", test_sequence},
      {"iterable", test_iterable}, {"callable", test_callable},   {"odd", test_odd},
      {"even", test_even},         {"divisibleby", test_divisibleby},
      {"eq", test_eq},             {"equalto", test_eq},          {"==", test_eq},
      {"ne", test_ne},             {"!=", test_ne},               {"lt", test_lt},
      {"lessthan", test_lt},       {"<", test_lt},                {"le", test_le},
      {"<=", test_le},             {"gt", test_gt},               {"greaterthan", test_gt},
      {">", test_gt},              {"ge", test_ge},               {">=", test_ge},
      {"in", test_in},             {"sameas", test_sameas},       {"lower", test_lower},
      {"upper", test_upper},       {"escaped", test_false},
  };
  return table;
}

// ---- Python methods -------------------------------------------------------------------------

const Value& method_argument(const CallArgs& args, size_t index, const char* method) {
  if (index >= args.positional.size()) {
    throw TemplateError(std::string(method) + "() is missing a required argument");
  }
  return args.positional[index];
}

const std::string* optional_chars(const CallArgs& args) {
  if (args.positional.empty() || args.positional[0].is_none()) return nullptr;
  if (!args.positional[0].is_string()) throw TemplateError("strip arg must be None or str");
  return &args.positional[0].as_string();
}

std::vector<Value> split_string(const std::string& text, const Value* separator, int64_t limit,
                                bool from_right) {
  std::vector<std::string> parts;
  if (separator == nullptr || separator->is_none()) {
    // Whitespace split: runs of whitespace separate, leading/trailing whitespace is ignored.
    const std::u32string chars = utf8_decode(text);
    std::vector<std::pair<size_t, size_t>> words;
    size_t i = 0;
    while (i < chars.size()) {
      while (i < chars.size() && is_python_space(chars[i])) ++i;
      if (i >= chars.size()) break;
      size_t j = i;
      while (j < chars.size() && !is_python_space(chars[j])) ++j;
      words.emplace_back(i, j);
      i = j;
    }
    if (limit >= 0 && static_cast<int64_t>(words.size()) > limit + 1) {
      if (!from_right) {
        std::vector<std::pair<size_t, size_t>> merged(words.begin(), words.begin() + limit);
        size_t end = chars.size();
        while (end > words[limit].first && is_python_space(chars[end - 1])) --end;
        merged.emplace_back(words[limit].first, end);
        words = merged;
      } else {
        const size_t keep_from = words.size() - static_cast<size_t>(limit);
        size_t begin = 0;
        while (begin < words[keep_from - 1].second && is_python_space(chars[begin])) ++begin;
        std::vector<std::pair<size_t, size_t>> merged{{begin, words[keep_from - 1].second}};
        merged.insert(merged.end(), words.begin() + static_cast<long>(keep_from), words.end());
        words = merged;
      }
    }
    for (const auto& [begin, end] : words) {
      parts.push_back(utf8_encode(std::u32string_view(chars).substr(begin, end - begin)));
    }
  } else {
    if (!separator->is_string()) throw TemplateError("must be str or None");
    const std::string& sep = separator->as_string();
    if (sep.empty()) throw TemplateError("empty separator");
    if (!from_right) {
      size_t start = 0;
      int64_t done = 0;
      while (limit < 0 || done < limit) {
        const size_t found = text.find(sep, start);
        if (found == std::string::npos) break;
        parts.push_back(text.substr(start, found - start));
        start = found + sep.size();
        ++done;
      }
      parts.push_back(text.substr(start));
    } else {
      size_t end = text.size();
      int64_t done = 0;
      std::vector<std::string> reversed;
      while (limit < 0 || done < limit) {
        if (end < sep.size()) break;
        const size_t found = text.rfind(sep, end - sep.size());
        if (found == std::string::npos) break;
        reversed.push_back(text.substr(found + sep.size(), end - found - sep.size()));
        end = found;
        ++done;
      }
      reversed.push_back(text.substr(0, end));
      parts.assign(reversed.rbegin(), reversed.rend());
    }
  }
  std::vector<Value> out;
  for (auto& part : parts) out.push_back(Value(std::move(part)));
  return out;
}

bool matches_affix(const std::string& text, const Value& affix, bool prefix) {
  auto check = [&](const Value& candidate) {
    if (!candidate.is_string()) throw TemplateError("startswith/endswith expects str or tuple");
    const std::string& a = candidate.as_string();
    if (a.size() > text.size()) return false;
    return prefix ? text.compare(0, a.size(), a) == 0
                  : text.compare(text.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list()) {
    for (const auto& item : affix.as_list().items) {
      if (check(item)) return true;
    }
    return false;
  }
  return check(affix);
}

// Python str.format with positional {} / {0} and named {name} fields.
// NOTE: a format spec after ':' is ignored, so '{:>5}' prints the bare value.
std::string str_format(const std::string& format, const CallArgs& args) {
  std::string out;
  size_t automatic = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '{' && i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < format.size() && format[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      const size_t close = format.find('}', i);
      if (close == std::string::npos) throw TemplateError("Single '{' encountered in format string");
      std::string field = format.substr(i + 1, close - i - 1);
      const size_t colon = field.find(':');
      if (colon != std::string::npos) field = field.substr(0, colon);
      const Value* value = nullptr;
      if (field.empty()) {
        if (automatic >= args.positional.size()) throw TemplateError("format: index out of range");
        value = &args.positional[automatic++];
      } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
        const size_t index = std::stoul(field);
        if (index >= args.positional.size()) throw TemplateError("format: index out of range");
        value = &args.positional[index];
      } else {
        for (const auto& [key, item] : args.named) {
          if (key == field) value = &item;
        }
        if (!value) throw TemplateError("format: missing key '" + field + "'");
      }
      out += value->str();
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

Value string_method(const Value& self, const std::string& name, CallArgs& args) {
  const std::string& text = self.as_string();
  if (name == "strip") return Value(strip(text, true, true, optional_chars(args)));
  if (name == "lstrip") return Value(strip(text, true, false, optional_chars(args)));
  if (name == "rstrip") return Value(strip(text, false, true, optional_chars(args)));
  if (name == "lower") return Value(to_lower(text));
  if (name == "upper") return Value(to_upper(text));
  if (name == "title") return Value(to_title(text));
  if (name == "capitalize") return Value(to_capitalize(text));

  if (name == "split" || name == "rsplit") {
    const Value* separator = args.positional.empty() ? nullptr : &args.positional[0];
    int64_t limit = args.positional.size() > 1 ? args.positional[1].as_int() : -1;
    for (const auto& [key, value] : args.named) {
      if (key == "sep") separator = &value;
      if (key == "maxsplit") limit = value.as_int();
    }
    return Value::list(split_string(text, separator, limit, name == "rsplit"));
  }

  if (name == "splitlines") {
    std::vector<Value> lines;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find_first_of("\n\r", start);
      if (end == std::string::npos) {
        lines.push_back(Value(text.substr(start)));
        break;
      }
      lines.push_back(Value(text.substr(start, end - start)));
      start = end + ((text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n') ? 2 : 1);
    }
    return Value::list(std::move(lines));
  }

  if (name == "startswith") return Value(matches_affix(text, method_argument(args, 0, name.c_str()), true));
  if (name == "endswith") return Value(matches_affix(text, method_argument(args, 0, name.c_str()), false));

  if (name == "replace") {
    const int64_t count = args.positional.size() > 2 ? args.positional[2].as_int() : -1;
    return Value(replace_text(text, method_argument(args, 0, "replace").str(),
                              method_argument(args, 1, "replace").str(), count));
  }

  if (name == "format") return Value(str_format(text, args));

  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    const std::string needle = method_argument(args, 0, name.c_str()).str();
    const size_t found = (name[0] == 'r') ? text.rfind(needle) : text.find(needle);
    if (found == std::string::npos) {
      if (name == "index" || name == "rindex") throw TemplateError("substring not found");
      return Value(int64_t{-1});
    }
    return Value(static_cast<int64_t>(utf8_length(std::string_view(text).substr(0, found))));
  }

  if (name == "count") {
    const std::string needle = method_argument(args, 0, "count").str();
    if (needle.empty()) return Value(static_cast<int64_t>(utf8_length(text) + 1));
    int64_t count = 0;
    for (size_t pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + needle.size())) {
      ++count;
    }
    return Value(count);
  }

  if (name == "join") {
    std::string out;
    bool first = true;
    for (const auto& item : iterate(method_argument(args, 0, "join"))) {
      if (!item.is_string()) throw TemplateError("join: sequence item must be str, not " +
                                                 item.type_name());
      if (!first) out += text;
      first = false;
      out += item.as_string();
    }
    return Value(out);
  }
  auto all_chars = [&](auto predicate) {
    const std::u32string chars = utf8_decode(text);
    if (chars.empty()) return false;
    for (char32_t c : chars) {
      if (!predicate(c)) return false;
    }
    return true;
  };

  if (name == "isdigit") return Value(all_chars([](char32_t c) { return c >= '0' && c <= '9'; }));
  if (name == "isspace") return Value(all_chars(is_python_space));

  if (name == "isalpha") {
    return Value(all_chars([](char32_t c) { return is_word_char(c) && c != '_' && !(c >= '0' && c <= '9'); }));
  }

  if (name == "isalnum") return Value(all_chars([](char32_t c) { return is_word_char(c) && c != '_'; }));

  if (name == "islower" || name == "isupper") {
    CallArgs none;
    return Value(name == "islower" ? test_lower(self, none) : test_upper(self, none));
  }

  if (name == "center" || name == "ljust" || name == "rjust") {
    const int64_t width = method_argument(args, 0, name.c_str()).as_int();
    const std::string fill = args.positional.size() > 1 ? args.positional[1].str() : " ";
    const int64_t length = static_cast<int64_t>(utf8_length(text));
    if (width <= length) return self;
    const int64_t pad = width - length;
    int64_t left = name == "ljust" ? 0 : (name == "rjust" ? pad : pad / 2 + (pad & width & 1));
    std::string out;
    for (int64_t i = 0; i < left; ++i) out += fill;
    out += text;
    for (int64_t i = 0; i < pad - left; ++i) out += fill;
    return Value(out);
  }
  return Value::undefined("'str object' has no attribute '" + name + "'");
}

Value dict_method(const Value& self, const std::string& name, CallArgs& args) {
  Dict& dict = self.as_dict();

  if (name == "items") {
    std::vector<Value> pairs;
    for (const auto& [key, value] : dict.entries) pairs.push_back(Value::tuple({key, value}));
    return Value::list(std::move(pairs));
  }

  if (name == "keys" || name == "values") {
    std::vector<Value> out;
    for (const auto& [key, value] : dict.entries) out.push_back(name == "keys" ? key : value);
    return Value::list(std::move(out));
  }

  if (name == "get") {
    const Value* found = dict.find(method_argument(args, 0, "get"));
    if (found) return *found;
    return args.positional.size() > 1 ? args.positional[1] : Value::none();
  }

  if (name == "copy") {
    Value copy = Value::dict();
    copy.as_dict().entries = dict.entries;
    return copy;
  }
  return Value::undefined("'dict object' has no attribute '" + name + "'");
}

Value list_method(const Value& self, const std::string& name, CallArgs& args) {
  const std::vector<Value>& items = self.as_list().items;

  if (name == "index") {
    const Value& target = method_argument(args, 0, "index");
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].equals(target)) return Value(static_cast<int64_t>(i));
    }
    throw TemplateError(target.repr() + " is not in list");
  }

  if (name == "count") {
    const Value& target = method_argument(args, 0, "count");
    int64_t count = 0;
    for (const auto& item : items) count += item.equals(target) ? 1 : 0;
    return Value(count);
  }

  if (name == "copy") return Value::list(items);
  std::string hint = "'";
  hint += self.type_name();
  hint += " object' has no attribute '";
  hint += name;
  hint += "'";
  return Value::undefined(hint);
}

bool is_method_name(ValueKind kind, const std::string& name) {
  static const char* const kString[] = {
      "strip", "lstrip", "rstrip", "lower", "upper", "title", "capitalize", "split", "rsplit",
      "splitlines", "startswith", "endswith", "replace", "format", "find", "rfind", "index",
      "rindex", "count", "join", "isdigit", "isspace", "isalpha", "isalnum", "islower", "isupper",
      "center", "ljust", "rjust"};
  static const char* const kDict[] = {"items", "keys", "values", "get", "copy"};
  static const char* const kList[] = {"index", "count", "copy"};
  auto in = [&](const auto& names) {
    for (const char* candidate : names) {
      if (name == candidate) return true;
    }
    return false;
  };
  if (kind == ValueKind::kString) return in(kString);
  if (kind == ValueKind::kDict) return in(kDict);
  if (kind == ValueKind::kList) return in(kList);
  return false;
}

// Formats the current local time. When SOURCE_DATE_EPOCH is set (the reproducible-builds
// convention: whole seconds since the Unix epoch), that instant is used instead, in UTC, so
// templates that print today's date render the same output in tests.
std::string strftime_now(const std::string& format) {
  std::tm local{};
  const char* fixed_epoch = std::getenv("SOURCE_DATE_EPOCH");
  if (fixed_epoch != nullptr && *fixed_epoch != '\0') {
    char* end = nullptr;
    errno = 0;
    const long long seconds = std::strtoll(fixed_epoch, &end, 10);
    if (*end != '\0' || errno != 0 || seconds < 0) {
      throw TemplateError(std::string("strftime_now(): invalid SOURCE_DATE_EPOCH '") +
                          fixed_epoch + "', expected whole seconds since the Unix epoch");
    }
    const std::time_t fixed = static_cast<std::time_t>(seconds);
    gmtime_r(&fixed, &local);
  } else {
    const std::time_t now = std::time(nullptr);
    localtime_r(&now, &local);
  }
  char buffer[512];
  const size_t size = std::strftime(buffer, sizeof(buffer), format.c_str(), &local);
  return std::string(buffer, size);
}

}  // namespace

bool has_test(const std::string& name) { return test_table().count(name) > 0; }

bool apply_test(Interpreter&, const std::string& name, const Value& value, CallArgs& args) {
  auto it = test_table().find(name);
  if (it == test_table().end()) throw TemplateError("no test named '" + name + "'");
  return it->second(value, args);
}

// Hugging Face renders chat templates in jinja2's ImmutableSandboxedEnvironment, which rejects the
// methods that change a list or dict in place. Calling one here fails with the same message.
bool is_mutating_method(const Value& object, const std::string& name) {
  static const char* const kList[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};
  static const char* const kDict[] = {"clear", "pop", "popitem", "setdefault", "update"};
  auto in = [&](const auto& names) {
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
  };
  if (object.is_list()) return !object.as_list().is_tuple && in(kList);
  if (object.is_dict()) return !object.as_dict().is_namespace && in(kDict);
  return false;
}

Value bound_method(const Value& object, const std::string& name) {
  if (is_mutating_method(object, name)) {
    const std::string message =
        "access to attribute '" + name + "' of '" + object.type_name() + "' object is unsafe.";
    return Value::function(name, [message](CallArgs&) -> Value { throw TemplateError(message); });
  }
  if (!is_method_name(object.kind(), name)) return Value::undefined("");
  if (object.is_dict() && object.as_dict().is_namespace) return Value::undefined("");
  const Value self = object;
  return Value::function(name, [self, name](CallArgs& args) -> Value {
    if (self.is_string()) return string_method(self, name, args);
    if (self.is_dict()) return dict_method(self, name, args);
    return list_method(self, name, args);
  });
}

std::string percent_format(const std::string& format, const std::vector<Value>& args,
                           bool mapping_operand) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    size_t j = i + 1;
    std::string spec = "%";
    while (j < format.size() && std::string("-+ #0123456789.").find(format[j]) != std::string::npos) {
      spec += format[j++];
    }
    if (j >= format.size()) throw TemplateError("incomplete format");
    const char conversion = format[j];
    i = j;
    if (conversion == '%') {
      out += '%';
      continue;
    }
    if (next >= args.size()) throw TemplateError("not enough arguments for format string");
    const Value& arg = args[next++];
    char buffer[512];
    switch (conversion) {
      case 's':
      case 'r': {
        const std::string text = conversion == 's' ? arg.str() : arg.repr();
        std::snprintf(buffer, sizeof(buffer), (spec + "s").c_str(), text.c_str());
        out += (spec == "%") ? text : std::string(buffer);
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o': {
        if (!arg.is_number()) throw TemplateError("%d format: a number is required");
        long long number = arg.integer_value();
        if (arg.is_float()) number = static_cast<long long>(arg.as_double());
        std::snprintf(buffer, sizeof(buffer),
                      (spec + "ll" + (conversion == 'i' ? 'd' : conversion)).c_str(), number);
        out += buffer;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!arg.is_number()) throw TemplateError("%f format: a number is required");
        std::snprintf(buffer, sizeof(buffer), (spec + conversion).c_str(), arg.as_double());
        out += buffer;
        break;
      }
      default:
        throw TemplateError(std::string("unsupported format character '") + conversion + "'");
    }
  }
  if (next < args.size() && !mapping_operand) {
    throw TemplateError("not all arguments converted during string formatting");
  }
  return out;
}

Value global_function(const std::string& name) {
  if (name == "range") {
    return Value::function("range", [](CallArgs& args) {
      int64_t start = 0, stop = 0, step = 1;
      auto as_int = [](const Value& v) {
        if (!v.is_int() && !v.is_bool()) {
          throw TemplateError("range() expects integers, got " + v.type_name());
        }
        return v.integer_value();
      };
      if (args.positional.size() == 1) {
        stop = as_int(args.positional[0]);
      } else if (args.positional.size() >= 2) {
        start = as_int(args.positional[0]);
        stop = as_int(args.positional[1]);
        if (args.positional.size() > 2) step = as_int(args.positional[2]);
      } else {
        throw TemplateError("range expected at least 1 argument, got 0");
      }
      if (step == 0) throw TemplateError("range() arg 3 must not be zero");
      std::vector<Value> items;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        items.push_back(Value(i));
        if (items.size() > kMaxSequenceLength) {
          throw TemplateError("range() result is longer than " +
                              std::to_string(kMaxSequenceLength) + " items");
        }
      }
      return Value::list(std::move(items));
    });
  }
  if (name == "dict" || name == "namespace") {
    const bool is_namespace = name == "namespace";
    return Value::function(name, [is_namespace](CallArgs& args) {
      Value result = Value::dict();
      result.as_dict().is_namespace = is_namespace;
      for (const auto& positional : args.positional) {
        if (!positional.is_dict()) throw TemplateError("expected a mapping argument");
        for (const auto& [key, value] : positional.as_dict().entries) {
          result.as_dict().set(key, value);
        }
      }
      for (const auto& [key, value] : args.named) result.as_dict().set(Value(key), value);
      return result;
    });
  }
  if (name == "raise_exception") {
    return Value::function("raise_exception", [](CallArgs& args) -> Value {
      throw TemplateError(args.positional.empty() ? std::string("raise_exception() called")
                                                  : args.positional[0].str());
    });
  }
  if (name == "strftime_now") {
    return Value::function("strftime_now", [](CallArgs& args) {
      if (args.positional.empty()) throw TemplateError("strftime_now() needs a format string");
      return Value(strftime_now(args.positional[0].str()));
    });
  }
  return Value::undefined("'" + name + "' is undefined");
}

}  // namespace mxgemma::jinja
