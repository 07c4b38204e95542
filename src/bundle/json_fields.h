// Typed reads of JSON config fields whose errors name the file and the dotted field path
// ("config.json: text_config.hidden_size: expected an integer, found string").
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mxgemma {

// Parses a whole JSON file. Throws std::runtime_error "<path>: invalid JSON: ..." or
// "<path>: cannot open".
nlohmann::json read_json_file(const std::filesystem::path& path);

// A view of one JSON object of a file. A key holding null counts as absent, as in the Hugging Face
// configs, where null means "use the default".
class JsonFields {
 public:
  // `path` is the dotted location of `object` inside the file, empty for the top level.
  JsonFields(const nlohmann::json& object, std::string file, std::string path);

  bool has(const std::string& key) const;
  const nlohmann::json& raw(const std::string& key) const;  // null when absent
  // "text_config.hidden_size"
  std::string field_path(const std::string& key) const;
  // Throws std::runtime_error "<file>: <field path>: <problem>".
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

  int require_int(const std::string& key) const;
  int get_int(const std::string& key, int fallback) const;
  std::optional<int> optional_int(const std::string& key) const;
  double require_double(const std::string& key) const;
  double get_double(const std::string& key, double fallback) const;
  std::optional<double> optional_double(const std::string& key) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string require_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::vector<int> get_int_list(const std::string& key) const;  // empty when absent
  // An int or a list of ints (as eos_token_id may be); empty when absent.
  std::vector<int32_t> get_int_or_int_list(const std::string& key) const;
  // The object under `key`; throws when present but not an object.
  std::optional<JsonFields> optional_object(const std::string& key) const;
  JsonFields require_object(const std::string& key) const;

  const nlohmann::json& object() const { return *object_; }
  const std::string& file() const { return file_; }

 private:
  int to_int(const std::string& key, const nlohmann::json& value) const;
  double to_double(const std::string& key, const nlohmann::json& value) const;

  const nlohmann::json* object_;
  std::string file_;
  std::string path_;
};

// "string", "number", "boolean", "array", "object" or "null", for messages.
std::string json_type_name(const nlohmann::json& value);

}  // namespace mxgemma
