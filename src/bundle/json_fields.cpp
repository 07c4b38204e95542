#include "bundle/json_fields.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace mxgemma {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& error) {
    throw std::runtime_error(path.string() + ": invalid JSON: " + error.what());
  }
}

std::string json_type_name(const nlohmann::json& value) {
  if (value.is_number()) return "number";
  return value.type_name();
}

JsonFields::JsonFields(const nlohmann::json& object, std::string file, std::string path)
    : object_(&object), file_(std::move(file)), path_(std::move(path)) {}

bool JsonFields::has(const std::string& key) const {
  auto it = object_->find(key);
  return it != object_->end() && !it->is_null();
}

const nlohmann::json& JsonFields::raw(const std::string& key) const {
  static const nlohmann::json null_value;
  auto it = object_->find(key);
  return it == object_->end() ? null_value : *it;
}

std::string JsonFields::field_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void JsonFields::fail(const std::string& key, const std::string& problem) const {
  throw std::runtime_error(file_ + ": " + field_path(key) + ": " + problem);
}

int JsonFields::to_int(const std::string& key, const nlohmann::json& value) const {
  if (!value.is_number_integer()) fail(key, "expected an integer, found " + json_type_name(value));
  if (value.is_number_unsigned()) {
    const auto number = value.get<uint64_t>();
    if (number > uint64_t(std::numeric_limits<int>::max())) fail(key, "integer out of range");
    return int(number);
  }
  const auto number = value.get<int64_t>();
  if (number < std::numeric_limits<int>::min() || number > std::numeric_limits<int>::max()) {
    fail(key, "integer out of range");
  }
  return int(number);
}

double JsonFields::to_double(const std::string& key, const nlohmann::json& value) const {
  if (!value.is_number()) fail(key, "expected a number, found " + json_type_name(value));
  return value.get<double>();
}

int JsonFields::require_int(const std::string& key) const {
  if (!has(key)) fail(key, "missing");
  return to_int(key, raw(key));
}

int JsonFields::get_int(const std::string& key, int fallback) const {
  return has(key) ? to_int(key, raw(key)) : fallback;
}

std::optional<int> JsonFields::optional_int(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return to_int(key, raw(key));
}

double JsonFields::require_double(const std::string& key) const {
  if (!has(key)) fail(key, "missing");
  return to_double(key, raw(key));
}

double JsonFields::get_double(const std::string& key, double fallback) const {
  return has(key) ? to_double(key, raw(key)) : fallback;
}

std::optional<double> JsonFields::optional_double(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return to_double(key, raw(key));
}

bool JsonFields::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& value = raw(key);
  if (!value.is_boolean()) fail(key, "expected a boolean, found " + json_type_name(value));
  return value.get<bool>();
}

std::string JsonFields::require_string(const std::string& key) const {
  if (!has(key)) fail(key, "missing");
  const auto& value = raw(key);
  if (!value.is_string()) fail(key, "expected a string, found " + json_type_name(value));
  return value.get<std::string>();
}

std::string JsonFields::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? require_string(key) : fallback;
}

std::vector<int> JsonFields::get_int_list(const std::string& key) const {
  std::vector<int> values;
  if (!has(key)) return values;
  const auto& list = raw(key);
  if (!list.is_array()) fail(key, "expected a list of integers, found " + json_type_name(list));
  for (size_t i = 0; i < list.size(); ++i) {
    values.push_back(to_int(key + "[" + std::to_string(i) + "]", list[i]));
  }
  return values;
}

std::vector<int32_t> JsonFields::get_int_or_int_list(const std::string& key) const {
  if (!has(key)) return {};
  if (raw(key).is_array()) {
    const std::vector<int> values = get_int_list(key);
    return std::vector<int32_t>(values.begin(), values.end());
  }
  return {int32_t(to_int(key, raw(key)))};
}

std::optional<JsonFields> JsonFields::optional_object(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& value = raw(key);
  if (!value.is_object()) fail(key, "expected an object, found " + json_type_name(value));
  return JsonFields(value, file_, field_path(key));
}

JsonFields JsonFields::require_object(const std::string& key) const {
  auto object = optional_object(key);
  if (!object) fail(key, "missing");
  return *object;
}

}  // namespace mxgemma
