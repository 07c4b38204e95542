// Jinja2 chat templates, rendered as Python's jinja2 renders them with Hugging Face's settings
// (trim_blocks, lstrip_blocks, tojson, raise_exception, strftime_now).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace mxgemma {

class ChatTemplate {
 public:
  // Parses the template. Throws std::runtime_error naming the line of a syntax error.
  explicit ChatTemplate(const std::string& source);
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

  // Renders with `context` as the template's variables (messages, tools, add_generation_prompt,
  // bos_token, enable_thinking, ...). Throws std::runtime_error for raise_exception() and errors,
  // and std::invalid_argument when `context` is not a JSON object. nlohmann::json sorts object
  // keys, so dict iteration and tojson follow key order. The ordered_json overload keeps the
  // insertion order, as Python dicts do.
  std::string render(const nlohmann::json& context) const;
  std::string render(const nlohmann::ordered_json& context) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mxgemma
