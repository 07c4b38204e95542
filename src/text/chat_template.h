// Jinja2 chat templates, rendered as Python's jinja2 renders them with Hugging Face's settings
// (trim_blocks, lstrip_blocks, tojson, raise_exception, strftime_now).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace mxgemma {

class ChatTemplate {
 public:
  // Parses the template; throws std::runtime_error with the line and column of a syntax error.
  explicit ChatTemplate(const std::string& source);
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

  // Renders with `context` as the template's variables (messages, tools, add_generation_prompt,
  // bos_token, enable_thinking, ...). Throws std::runtime_error for raise_exception() and errors.
  std::string render(const nlohmann::json& context) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mxgemma
