#include "text/chat_template.h"

#include <vector>

#include "text/jinja/interpreter.h"
#include "text/jinja/parser.h"

namespace mxgemma {

struct ChatTemplate::Impl {
  std::vector<jinja::NodePtr> body;
};

ChatTemplate::ChatTemplate(const std::string& source) : impl_(std::make_unique<Impl>()) {
  try {
    impl_->body = jinja::parse_template(source);
  } catch (const jinja::TemplateError& error) {
    throw std::runtime_error(std::string("chat template: ") + error.what());
  }
}

ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) {
    throw std::invalid_argument("chat template: the render context must be a JSON object, got " +
                                std::string(context.type_name()));
  }
  try {
    jinja::Interpreter interpreter;
    return interpreter.render(impl_->body, jinja::Value::from_json(context));
  } catch (const jinja::TemplateError& error) {
    throw std::runtime_error(std::string("chat template: ") + error.what());
  }
}

std::string ChatTemplate::render(const nlohmann::json& context) const {
  // nlohmann::json keeps object keys sorted, so tojson output and dict iteration follow key
  // order here. Pass an ordered_json to keep the caller's insertion order as Python does.
  nlohmann::ordered_json ordered;
  try {
    ordered = nlohmann::ordered_json::parse(context.dump());
  } catch (const nlohmann::json::exception& error) {
    throw std::invalid_argument(std::string("chat template: invalid render context: ") +
                                error.what());
  }
  return render(ordered);
}

}  // namespace mxgemma
