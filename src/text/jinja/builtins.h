// Filters, tests, global functions and the Python methods templates call on str, list and dict.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "text/jinja/value.h"

namespace mxgemma::jinja {

class Interpreter;

bool has_filter(const std::string& name);
bool has_test(const std::string& name);

// `value | name(args)`; throws TemplateError for bad arguments.
Value apply_filter(Interpreter& interpreter, const std::string& name, const Value& value,
                   CallArgs& args);
// `value is name(args)`.
bool apply_test(Interpreter& interpreter, const std::string& name, const Value& value,
                CallArgs& args);
// `object.name` when it names a method of str, list or dict; undefined otherwise.
Value bound_method(const Value& object, const std::string& name);
// range, dict, namespace, raise_exception and strftime_now.
Value global_function(const std::string& name);

// Python's printf-style `format % args` (%s, %r, %d, %i, %f with precision, %x, %%).
// With `mapping_operand`, a single dict or list operand need not be consumed, as in Python.
std::string percent_format(const std::string& format, const std::vector<Value>& args,
                           bool mapping_operand = false);

// Python str.replace: at most `count` replacements when count >= 0.
std::string replace_text(const std::string& text, const std::string& old_text,
                         const std::string& new_text, int64_t count);

// Python str(value) joined into text by the `~` operator and by filters.
inline std::string to_text(const Value& value) { return value.str(); }

}  // namespace mxgemma::jinja
