// OpenAI API requests parsed into typed structs, and the OpenAI error object. Every check of a
// field throws ApiError naming the field (as `param`), so the route can respond with its status.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"
#include "server/media_parts.h"

namespace mxgemma::server {

// An error as OpenAI's API returns it: HTTP status plus {"error": {message, type, param, code}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string code, std::string param, const std::string& message)
      : std::runtime_error(message), status_(status), type_(std::move(type)), code_(std::move(code)),
        param_(std::move(param)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& code() const { return code_; }
  const std::string& param() const { return param_; }  // empty: null

  nlohmann::json to_json() const;

 private:
  int status_;
  std::string type_;
  std::string code_;
  std::string param_;
};

// A 400 invalid_request_error about `param`.
[[noreturn]] void fail_invalid(const std::string& param, const std::string& code, const std::string& message);

// Sampling and length fields shared by /v1/chat/completions and /v1/completions. Unset fields
// fall back to generation_config.json.
struct GenerationFields {
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int> top_k;
  std::optional<float> min_p;
  std::optional<float> presence_penalty;
  std::optional<float> frequency_penalty;
  std::optional<float> repetition_penalty;
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id, bias in [-100, 100]
  std::optional<uint64_t> seed;
  std::optional<int64_t> max_tokens;  // max_completion_tokens, else max_tokens
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

enum class ToolChoice { automatic, none, required, function };

struct ChatRequest {
  std::string model;
  // The apply_chat_template request: messages (normalized), tools, tool_choice,
  // add_generation_prompt, enable_thinking and the chat_template_kwargs.
  nlohmann::ordered_json template_request;
  ToolChoice tool_choice = ToolChoice::automatic;
  std::string tool_choice_name;  // for ToolChoice::function
  bool has_tools = false;
  GenerationFields generation;
  // Image and audio parts of the user messages, in prompt order. Their content parts reach the
  // template as {"type": "image"} and {"type": "audio"}, which it renders as placeholders.
  std::vector<MediaPart> media;
};

struct CompletionRequest {
  std::string model;
  std::optional<std::string> prompt_text;
  std::vector<int32_t> prompt_tokens;  // when the prompt is given as token ids
  GenerationFields generation;
};

// Throw ApiError (400) naming the field at fault.
ChatRequest parse_chat_request(const nlohmann::ordered_json& body);
CompletionRequest parse_completion_request(const nlohmann::ordered_json& body);

// Parses a request body, keeping key order (tool schemas reach the template's tojson in the
// client's order). Throws ApiError (400, invalid_json) when it is not a JSON object.
nlohmann::ordered_json parse_body(const std::string& body);

}  // namespace mxgemma::server
