#include "server/request.h"

#include "util/json_depth.h"

#include <cmath>
#include <cstdlib>
#include <limits>

namespace mxgemma::server {
namespace {

using Json = nlohmann::ordered_json;

std::string type_name(const Json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number()) return "number";
  return value.type_name();
}

[[noreturn]] void fail_type(const std::string& param, const std::string& expected, const Json& found) {
  fail_invalid(param, "invalid_type", "invalid " + param + ": expected " + expected + ", found " + type_name(found));
}

// The field's value, or nullptr when it is absent or null (OpenAI clients send null for unset).
const Json* field(const Json& object, const char* key) {
  const auto found = object.find(key);
  if (found == object.end() || found->is_null()) return nullptr;
  return &*found;
}

std::optional<double> number_field(const Json& body, const char* key) {
  const Json* value = field(body, key);
  if (!value) return std::nullopt;
  if (!value->is_number()) fail_type(key, "a number", *value);
  return value->get<double>();
}

std::optional<int64_t> integer_field(const Json& body, const char* key) {
  const Json* value = field(body, key);
  if (!value) return std::nullopt;
  if (!value->is_number_integer()) fail_type(key, "an integer", *value);
  return value->get<int64_t>();
}

std::optional<bool> bool_field(const Json& body, const char* key) {
  const Json* value = field(body, key);
  if (!value) return std::nullopt;
  if (!value->is_boolean()) fail_type(key, "a boolean", *value);
  return value->get<bool>();
}

std::optional<float> float_in_range(const Json& body, const char* key, double low, double high, const char* range) {
  const std::optional<double> value = number_field(body, key);
  if (!value) return std::nullopt;
  if (!(*value >= low && *value <= high)) {
    fail_invalid(key, "invalid_value", "invalid " + std::string(key) + ": " + std::to_string(*value) + " is not in " + range);
  }
  return float(*value);
}

std::vector<std::string> parse_stop(const Json& body) {
  const Json* value = field(body, "stop");
  if (!value) return {};
  std::vector<std::string> stop;
  if (value->is_string()) {
    stop.push_back(value->get<std::string>());
  } else if (value->is_array()) {
    for (size_t i = 0; i < value->size(); ++i) {
      if (!(*value)[i].is_string()) fail_type("stop[" + std::to_string(i) + "]", "a string", (*value)[i]);
      stop.push_back((*value)[i].get<std::string>());
    }
  } else {
    fail_type("stop", "a string or an array of strings", *value);
  }
  std::erase_if(stop, [](const std::string& text) { return text.empty(); });
  return stop;
}

// OpenAI's logit_bias: {"token id": bias}, the bias in [-100, 100].
std::vector<std::pair<int32_t, float>> parse_logit_bias(const Json& body) {
  const Json* value = field(body, "logit_bias");
  if (!value) return {};
  if (!value->is_object()) fail_type("logit_bias", "an object of token id to bias", *value);
  std::vector<std::pair<int32_t, float>> biases;
  for (const auto& [key, bias] : value->items()) {
    const std::string param = "logit_bias[\"" + key + "\"]";
    char* end = nullptr;
    const long long token = key.empty() ? -1 : std::strtoll(key.c_str(), &end, 10);
    if (token < 0 || token > std::numeric_limits<int32_t>::max() || (end != nullptr && *end != '\0')) {
      fail_invalid(param, "invalid_value", "invalid logit_bias: key \"" + key + "\" is not a token id");
    }
    if (!bias.is_number()) fail_type(param, "a number", bias);
    const double amount = bias.get<double>();
    if (!(amount >= -100.0 && amount <= 100.0)) {
      fail_invalid(param, "invalid_value", "invalid " + param + ": " + std::to_string(amount) + " is not in [-100, 100]");
    }
    biases.emplace_back(int32_t(token), float(amount));
  }
  return biases;
}

GenerationFields parse_generation_fields(const Json& body) {
  GenerationFields fields;
  const double infinity = std::numeric_limits<double>::infinity();
  fields.temperature = float_in_range(body, "temperature", 0.0, 100.0, "[0, 100]");
  fields.top_p = float_in_range(body, "top_p", 0.0, 1.0, "[0, 1]");
  if (fields.top_p && *fields.top_p == 0.0f) fail_invalid("top_p", "invalid_value", "invalid top_p: must be > 0");
  fields.min_p = float_in_range(body, "min_p", 0.0, 1.0, "[0, 1]");
  fields.presence_penalty = float_in_range(body, "presence_penalty", -2.0, 2.0, "[-2, 2]");
  fields.frequency_penalty = float_in_range(body, "frequency_penalty", -2.0, 2.0, "[-2, 2]");
  fields.repetition_penalty = float_in_range(body, "repetition_penalty", 0.0, infinity, "(0, inf)");
  if (fields.repetition_penalty && *fields.repetition_penalty == 0.0f) {
    fail_invalid("repetition_penalty", "invalid_value", "invalid repetition_penalty: must be > 0");
  }
  fields.logit_bias = parse_logit_bias(body);

  if (const auto top_k = integer_field(body, "top_k")) {
    // Some clients send -1 for "off"; 0 is off for the sampler.
    if (*top_k < -1 || *top_k > std::numeric_limits<int>::max()) {
      fail_invalid("top_k", "invalid_value", "invalid top_k: must be >= 0 (0 or -1 is off)");
    }
    fields.top_k = int(std::max<int64_t>(*top_k, 0));
  }
  if (const Json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) fail_type("seed", "an integer", *seed);
    fields.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : uint64_t(seed->get<int64_t>());
  }

  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (const auto value = integer_field(body, key)) {
      if (*value < 1) fail_invalid(key, "invalid_value", "invalid " + std::string(key) + ": must be >= 1");
      // max_completion_tokens is the newer name and wins when both are given.
      if (!fields.max_tokens || std::string(key) == "max_completion_tokens") fields.max_tokens = *value;
    }
  }
  if (const auto n = integer_field(body, "n"); n && *n != 1) {
    fail_invalid("n", "invalid_value", "invalid n: only n = 1 is supported; send " + std::to_string(*n) + " requests instead");
  }

  fields.stop = parse_stop(body);
  fields.stream = bool_field(body, "stream").value_or(false);
  if (const Json* options = field(body, "stream_options")) {
    if (!options->is_object()) fail_type("stream_options", "an object", *options);
    fields.include_usage = bool_field(*options, "include_usage").value_or(false);
  }
  return fields;
}

std::string model_field(const Json& body) {
  const Json* model = field(body, "model");
  if (!model) return "";
  if (!model->is_string()) fail_type("model", "a string", *model);
  return model->get<std::string>();
}

// The URL of an image part: {"image_url": {"url": URL}} or, as OpenAI also accepts, {"image_url": URL}.
MediaPart parse_image_part(const Json& part, const std::string& part_param) {
  MediaPart media;
  media.kind = MediaInput::Kind::image;
  const Json* image_url = field(part, "image_url");
  if (!image_url) fail_invalid(part_param + ".image_url", "missing_field", "invalid " + part_param + ": \"image_url\" is missing");
  if (image_url->is_string()) {
    media.param = part_param + ".image_url";
    media.source = image_url->get<std::string>();
    return media;
  }
  if (!image_url->is_object()) fail_type(part_param + ".image_url", "a string or an object with \"url\"", *image_url);
  media.param = part_param + ".image_url.url";
  const Json* url = field(*image_url, "url");
  if (!url) fail_invalid(media.param, "missing_field", "invalid " + part_param + ": \"image_url.url\" is missing");
  if (!url->is_string()) fail_type(media.param, "a string", *url);
  media.source = url->get<std::string>();
  return media;
}

// {"input_audio": {"data": BASE64, "format": "wav" | "mp3" | "flac"}}
MediaPart parse_audio_part(const Json& part, const std::string& part_param) {
  MediaPart media;
  media.kind = MediaInput::Kind::audio;
  const std::string audio_param = part_param + ".input_audio";
  const Json* audio = field(part, "input_audio");
  if (!audio) fail_invalid(audio_param, "missing_field", "invalid " + part_param + ": \"input_audio\" is missing");
  if (!audio->is_object()) fail_type(audio_param, "an object with \"data\" and \"format\"", *audio);
  media.param = audio_param + ".data";
  const Json* data = field(*audio, "data");
  if (!data) fail_invalid(media.param, "missing_field", "invalid " + part_param + ": \"input_audio.data\" is missing");
  if (!data->is_string()) fail_type(media.param, "a base64 string", *data);
  const Json* format = field(*audio, "format");
  if (!format) fail_invalid(audio_param + ".format", "missing_field", "invalid " + part_param + ": \"input_audio.format\" is missing");
  if (!format->is_string()) fail_type(audio_param + ".format", "a string", *format);
  media.source = data->get<std::string>();
  media.audio_format = format->get<std::string>();
  return media;
}

// A message's content: a string, or typed parts. Text parts alone are joined into one string.
// With image or audio parts, the content stays a list of text, image and audio parts (as the
// chat template reads them) and `media` receives the sources in order.
Json message_content(const Json& content, const std::string& param, const std::string& role, std::vector<MediaPart>& media) {
  if (content.is_string()) return content;
  if (!content.is_array()) fail_type(param, "a string or an array of content parts", content);
  std::string text;
  Json parts = Json::array();
  bool has_media = false;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string part_param = param + "[" + std::to_string(i) + "]";
    const Json& part = content[i];
    if (!part.is_object()) fail_type(part_param, "an object", part);
    const Json* type = field(part, "type");
    if (!type || !type->is_string()) fail_invalid(part_param + ".type", "missing_field", "invalid " + part_param + ": \"type\" is missing or not a string");
    const std::string kind = type->get<std::string>();
    if (kind == "text" || kind == "input_text") {
      const Json* part_text = field(part, "text");
      if (!part_text || !part_text->is_string()) {
        fail_invalid(part_param + ".text", "missing_field", "invalid " + part_param + ": a text part needs a string \"text\"");
      }
      text += part_text->get<std::string>();
      parts.push_back({{"type", "text"}, {"text", *part_text}});
    } else if (kind == "image_url" || kind == "input_image" || kind == "input_audio") {
      if (role != "user") {
        fail_invalid(part_param, "unsupported_content", "invalid " + part_param + ": only user messages may contain image or audio parts");
      }
      const bool image = kind != "input_audio";
      media.push_back(image ? parse_image_part(part, part_param) : parse_audio_part(part, part_param));
      parts.push_back({{"type", image ? "image" : "audio"}});
      has_media = true;
    } else {
      fail_invalid(part_param + ".type", "invalid_value",
                   "invalid " + part_param + ".type: unknown content part type \"" + kind + "\"; expected text, image_url or input_audio");
    }
  }
  if (has_media) return parts;
  return text;
}

// An assistant tool call with its arguments as an object, the form chat templates iterate over.
Json parse_assistant_tool_call(const Json& call, const std::string& param) {
  if (!call.is_object()) fail_type(param, "an object", call);
  const Json* function = field(call, "function");
  if (!function || !function->is_object()) fail_invalid(param + ".function", "missing_field", "invalid " + param + ": \"function\" is missing or not an object");
  const Json* name = field(*function, "name");
  if (!name || !name->is_string()) fail_invalid(param + ".function.name", "missing_field", "invalid " + param + ": \"function.name\" is missing or not a string");

  Json arguments = Json::object();
  if (const Json* raw = field(*function, "arguments")) {
    if (raw->is_object()) {
      arguments = *raw;
    } else if (raw->is_string()) {
      try {
        arguments = raw->get<std::string>().empty() ? Json::object() : Json::parse(raw->get<std::string>());
        if (json_deeper_than(arguments, kMaxJsonDepth)) {
          fail_invalid(param + ".function.arguments", "invalid_value",
                       "invalid " + param + ".function.arguments: nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
        }
      } catch (const nlohmann::json::parse_error&) {
        fail_invalid(param + ".function.arguments", "invalid_value", "invalid " + param + ".function.arguments: not valid JSON");
      }
      if (!arguments.is_object()) {
        fail_invalid(param + ".function.arguments", "invalid_value", "invalid " + param + ".function.arguments: expected a JSON object");
      }
    } else {
      fail_type(param + ".function.arguments", "a JSON string", *raw);
    }
  }

  Json parsed = Json::object();
  if (const Json* id = field(call, "id")) {
    if (!id->is_string()) fail_type(param + ".id", "a string", *id);
    parsed["id"] = *id;
  }
  parsed["type"] = "function";
  parsed["function"] = {{"name", *name}, {"arguments", std::move(arguments)}};
  return parsed;
}

Json parse_message(const Json& message, const std::string& param, std::vector<MediaPart>& media) {
  if (!message.is_object()) fail_type(param, "an object", message);
  const Json* role_value = field(message, "role");
  if (!role_value) fail_invalid(param + ".role", "missing_field", "invalid " + param + ": \"role\" is missing");
  if (!role_value->is_string()) fail_type(param + ".role", "a string", *role_value);
  std::string role = role_value->get<std::string>();
  if (role != "system" && role != "developer" && role != "user" && role != "assistant" && role != "tool") {
    fail_invalid(param + ".role", "invalid_value",
                 "invalid " + param + ".role: unknown role \"" + role + "\"; expected system, developer, user, assistant or tool");
  }
  // Gemma 4 templates know no developer role; OpenAI defines it as the system role of newer models.
  if (role == "developer") role = "system";

  Json parsed = Json::object();
  parsed["role"] = role;
  const Json* content = field(message, "content");
  const Json* tool_calls = field(message, "tool_calls");
  if (content) {
    parsed["content"] = message_content(*content, param + ".content", role, media);
  } else if (role != "assistant" || !tool_calls) {
    fail_invalid(param + ".content", "missing_field", "invalid " + param + ": \"content\" is missing");
  }
  if (const Json* name = field(message, "name")) {
    if (!name->is_string()) fail_type(param + ".name", "a string", *name);
    parsed["name"] = *name;
  }
  if (role == "assistant") {
    if (const Json* reasoning = field(message, "reasoning_content")) {
      if (!reasoning->is_string()) fail_type(param + ".reasoning_content", "a string", *reasoning);
      parsed["reasoning_content"] = *reasoning;
    }
    if (tool_calls) {
      if (!tool_calls->is_array()) fail_type(param + ".tool_calls", "an array", *tool_calls);
      Json calls = Json::array();
      for (size_t i = 0; i < tool_calls->size(); ++i) {
        calls.push_back(parse_assistant_tool_call((*tool_calls)[i], param + ".tool_calls[" + std::to_string(i) + "]"));
      }
      parsed["tool_calls"] = std::move(calls);
    }
  }
  if (role == "tool") {
    if (const Json* id = field(message, "tool_call_id")) {
      if (!id->is_string()) fail_type(param + ".tool_call_id", "a string", *id);
      parsed["tool_call_id"] = *id;
    }
  }
  return parsed;
}

Json parse_tools(const Json& tools) {
  if (!tools.is_array()) fail_type("tools", "an array", tools);
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string param = "tools[" + std::to_string(i) + "]";
    const Json& tool = tools[i];
    if (!tool.is_object()) fail_type(param, "an object", tool);
    const Json* type = field(tool, "type");
    if (!type || *type != "function") fail_invalid(param + ".type", "invalid_value", "invalid " + param + ".type: expected \"function\"");
    const Json* function = field(tool, "function");
    if (!function || !function->is_object()) fail_invalid(param + ".function", "missing_field", "invalid " + param + ": \"function\" is missing or not an object");
    const Json* name = field(*function, "name");
    if (!name || !name->is_string() || name->get<std::string>().empty()) {
      fail_invalid(param + ".function.name", "missing_field", "invalid " + param + ".function.name: missing or not a non-empty string");
    }
    if (const Json* description = field(*function, "description"); description && !description->is_string()) {
      fail_type(param + ".function.description", "a string", *description);
    }
    if (const Json* parameters = field(*function, "parameters"); parameters && !parameters->is_object()) {
      fail_invalid(param + ".function.parameters", "invalid_type",
                   "invalid " + param + ".function.parameters: the tool schema must be a JSON Schema object, found " + type_name(*parameters));
    }
  }
  return tools;
}

void parse_tool_choice(const Json& body, ChatRequest& request) {
  const Json* choice = field(body, "tool_choice");
  if (!choice) return;
  if (choice->is_string()) {
    const std::string mode = choice->get<std::string>();
    if (mode == "auto") request.tool_choice = ToolChoice::automatic;
    else if (mode == "none") request.tool_choice = ToolChoice::none;
    else if (mode == "required") request.tool_choice = ToolChoice::required;
    else fail_invalid("tool_choice", "invalid_value", "invalid tool_choice: \"" + mode + "\"; expected auto, none, required or a function");
  } else if (choice->is_object()) {
    const Json* function = field(*choice, "function");
    const Json* name = function && function->is_object() ? field(*function, "name") : nullptr;
    if (!name || !name->is_string()) {
      fail_invalid("tool_choice", "invalid_value", "invalid tool_choice: expected {\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
    request.tool_choice = ToolChoice::function;
    request.tool_choice_name = name->get<std::string>();
  } else {
    fail_type("tool_choice", "a string or an object", *choice);
  }
  if (request.tool_choice == ToolChoice::required && !request.has_tools) {
    fail_invalid("tool_choice", "invalid_value", "invalid tool_choice: \"required\" needs a non-empty tools list");
  }
  if (request.tool_choice == ToolChoice::function) {
    bool found = false;
    if (request.has_tools) {
      for (const Json& tool : request.template_request["tools"]) found = found || tool["function"]["name"] == request.tool_choice_name;
    }
    if (!found) {
      fail_invalid("tool_choice", "invalid_value", "invalid tool_choice: no tool named \"" + request.tool_choice_name + "\" in tools");
    }
  }
}

// Thinking follows chat_template_kwargs.enable_thinking, else reasoning_effort ("none" is off,
// any other effort is on), else stays off as the Gemma 4 templates default.
bool parse_enable_thinking(const Json& body, const Json* kwargs) {
  if (kwargs) {
    if (const Json* flag = field(*kwargs, "enable_thinking")) {
      if (!flag->is_boolean()) fail_type("chat_template_kwargs.enable_thinking", "a boolean", *flag);
      return flag->get<bool>();
    }
  }
  if (const Json* effort = field(body, "reasoning_effort")) {
    if (!effort->is_string()) fail_type("reasoning_effort", "a string", *effort);
    const std::string level = effort->get<std::string>();
    if (level == "none") return false;
    if (level == "minimal" || level == "low" || level == "medium" || level == "high") return true;
    fail_invalid("reasoning_effort", "invalid_value", "invalid reasoning_effort: \"" + level + "\"; expected none, minimal, low, medium or high");
  }
  return false;
}

}  // namespace

nlohmann::json ApiError::to_json() const {
  nlohmann::json error = {{"message", what()}, {"type", type_}};
  error["param"] = param_.empty() ? nlohmann::json(nullptr) : nlohmann::json(param_);
  error["code"] = code_.empty() ? nlohmann::json(nullptr) : nlohmann::json(code_);
  return {{"error", error}};
}

void fail_invalid(const std::string& param, const std::string& code, const std::string& message) {
  throw ApiError(400, "invalid_request_error", code, param, message);
}

nlohmann::ordered_json parse_body(const std::string& body) {
  Json parsed;
  try {
    parsed = Json::parse(body);
  } catch (const nlohmann::json::parse_error& error) {
    throw ApiError(400, "invalid_request_error", "invalid_json", "", std::string("the request body is not valid JSON: ") + error.what());
  }
  if (!parsed.is_object()) {
    throw ApiError(400, "invalid_request_error", "invalid_json", "", "the request body must be a JSON object, found " + type_name(parsed));
  }
  if (json_deeper_than(parsed, kMaxJsonDepth)) {
    throw ApiError(400, "invalid_request_error", "invalid_json", "",
                   "the request body nests arrays and objects more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  }
  return parsed;
}

ChatRequest parse_chat_request(const Json& body) {
  ChatRequest request;
  request.model = model_field(body);
  const Json* messages = field(body, "messages");
  if (!messages) fail_invalid("messages", "missing_field", "invalid request: \"messages\" is missing");
  if (!messages->is_array()) fail_type("messages", "an array", *messages);
  if (messages->empty()) fail_invalid("messages", "invalid_value", "invalid messages: the conversation is empty");
  Json parsed_messages = Json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    parsed_messages.push_back(parse_message((*messages)[i], "messages[" + std::to_string(i) + "]", request.media));
  }

  Json& out = request.template_request;
  out = Json::object();
  out["messages"] = std::move(parsed_messages);
  if (const Json* tools = field(body, "tools")) {
    out["tools"] = parse_tools(*tools);
    request.has_tools = !out["tools"].empty();
    if (!request.has_tools) out.erase("tools");
  }
  parse_tool_choice(body, request);
  if (request.tool_choice == ToolChoice::none) {
    out.erase("tools");  // the model must not see tools it may not call
  } else if (const Json* choice = field(body, "tool_choice")) {
    out["tool_choice"] = *choice;
  }
  out["add_generation_prompt"] = true;

  const Json* kwargs = field(body, "chat_template_kwargs");
  if (kwargs && !kwargs->is_object()) fail_type("chat_template_kwargs", "an object", *kwargs);
  out["enable_thinking"] = parse_enable_thinking(body, kwargs);
  if (kwargs) {
    for (const auto& [key, value] : kwargs->items()) {
      if (key == "messages" || key == "tools" || key == "add_generation_prompt") {
        fail_invalid("chat_template_kwargs." + key, "invalid_value",
                     "invalid chat_template_kwargs: \"" + key + "\" is set by the request itself");
      }
      out[key] = value;
    }
  }
  request.generation = parse_generation_fields(body);
  return request;
}

CompletionRequest parse_completion_request(const Json& body) {
  CompletionRequest request;
  request.model = model_field(body);
  const Json* prompt = field(body, "prompt");
  if (!prompt) fail_invalid("prompt", "missing_field", "invalid request: \"prompt\" is missing");
  // OpenAI also takes a list of prompts; one request here generates for one prompt.
  const Json* single = prompt;
  if (prompt->is_array() && prompt->size() == 1 && ((*prompt)[0].is_string() || (*prompt)[0].is_array())) single = &(*prompt)[0];
  if (single->is_string()) {
    request.prompt_text = single->get<std::string>();
  } else if (single->is_array() && !single->empty()) {
    for (size_t i = 0; i < single->size(); ++i) {
      const Json& token = (*single)[i];
      if (!token.is_number_integer()) {
        fail_invalid("prompt", "invalid_type", "invalid prompt: expected a string or an array of token ids (one prompt per request)");
      }
      const int64_t id = token.get<int64_t>();
      if (id < 0 || id > std::numeric_limits<int32_t>::max()) {
        fail_invalid("prompt", "invalid_value", "invalid prompt: token id " + std::to_string(id) + " is out of range");
      }
      request.prompt_tokens.push_back(int32_t(id));
    }
  } else {
    fail_invalid("prompt", "invalid_type", "invalid prompt: expected a string or a non-empty array of token ids (one prompt per request)");
  }
  request.generation = parse_generation_fields(body);
  return request;
}

}  // namespace mxgemma::server
