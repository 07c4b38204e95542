#include "server/response.h"

namespace mxgemma::server {

void ChatOutputAssembler::push(const std::string& text, std::vector<Json>& deltas) {
  if (text.empty()) return;
  std::vector<Gemma4Event> events;
  parser_.push(text, events);
  convert(events, deltas);
}

void ChatOutputAssembler::finish(std::vector<Json>& deltas) {
  std::vector<Gemma4Event> events;
  parser_.finish(events);
  convert(events, deltas);
}

void ChatOutputAssembler::convert(const std::vector<Gemma4Event>& events, std::vector<Json>& deltas) {
  for (const Gemma4Event& event : events) {
    switch (event.kind) {
      case Gemma4Event::Kind::kReasoning:
        if (!event.text.empty()) deltas.push_back({{"reasoning_content", event.text}});
        break;
      case Gemma4Event::Kind::kContent:
        if (!event.text.empty()) deltas.push_back({{"content", event.text}});
        break;
      case Gemma4Event::Kind::kToolCall: {
        const size_t index = tool_calls_.size();
        const std::string id = call_id_prefix_ + std::to_string(index);
        // OpenAI opens a call with its name and empty arguments, then streams the arguments.
        Json opening = {{"index", index}, {"id", id}, {"type", "function"},
                        {"function", {{"name", event.tool_call.name}, {"arguments", ""}}}};
        deltas.push_back({{"tool_calls", Json::array({opening})}});
        Json arguments = {{"index", index}, {"function", {{"arguments", event.tool_call.arguments}}}};
        deltas.push_back({{"tool_calls", Json::array({arguments})}});
        tool_calls_.push_back({{"id", id}, {"type", "function"},
                               {"function", {{"name", event.tool_call.name}, {"arguments", event.tool_call.arguments}}}});
        break;
      }
    }
  }
}

Json ChatOutputAssembler::message() const {
  const Gemma4Output& output = parser_.output();
  Json message = {{"role", "assistant"}};
  if (output.content.empty() && !tool_calls_.empty()) message["content"] = nullptr;
  else message["content"] = output.content;
  if (!output.reasoning.empty()) message["reasoning_content"] = output.reasoning;
  if (!tool_calls_.empty()) message["tool_calls"] = tool_calls_;
  return message;
}

std::string finish_reason_name(JobFinish finish, bool has_tool_calls) {
  if (has_tool_calls) return "tool_calls";
  // A timed-out request, like max_tokens, was cut short by a limit.
  if (finish == JobFinish::length || finish == JobFinish::timed_out) return "length";
  return "stop";
}

Json usage_json(const JobStats& stats) {
  return {{"prompt_tokens", stats.prompt_tokens},
          {"completion_tokens", stats.completion_tokens},
          {"total_tokens", stats.prompt_tokens + stats.completion_tokens}};
}

namespace {

Json object_header(const ResponseHeader& header, const char* object) {
  return {{"id", header.id}, {"object", object}, {"created", header.created}, {"model", header.model}};
}

Json nullable(const std::string& text) { return text.empty() ? Json(nullptr) : Json(text); }

}  // namespace

Json chat_completion_json(const ResponseHeader& header, const Json& message, const std::string& finish_reason,
                          const JobStats& stats) {
  Json response = object_header(header, "chat.completion");
  response["choices"] = Json::array({{{"index", 0}, {"message", message}, {"logprobs", nullptr},
                                      {"finish_reason", finish_reason}}});
  response["usage"] = usage_json(stats);
  return response;
}

Json chat_chunk_json(const ResponseHeader& header, const Json& delta, const std::string& finish_reason) {
  Json chunk = object_header(header, "chat.completion.chunk");
  chunk["choices"] = Json::array({{{"index", 0}, {"delta", delta}, {"logprobs", nullptr},
                                   {"finish_reason", nullable(finish_reason)}}});
  return chunk;
}

Json chat_usage_chunk_json(const ResponseHeader& header, const JobStats& stats) {
  Json chunk = object_header(header, "chat.completion.chunk");
  chunk["choices"] = Json::array();
  chunk["usage"] = usage_json(stats);
  return chunk;
}

Json completion_json(const ResponseHeader& header, const std::string& text, const std::string& finish_reason,
                     const JobStats& stats) {
  Json response = object_header(header, "text_completion");
  response["choices"] = Json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr},
                                      {"finish_reason", finish_reason}}});
  response["usage"] = usage_json(stats);
  return response;
}

Json completion_chunk_json(const ResponseHeader& header, const std::string& text, const std::string& finish_reason) {
  Json chunk = object_header(header, "text_completion");
  chunk["choices"] = Json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr},
                                   {"finish_reason", nullable(finish_reason)}}});
  return chunk;
}

Json completion_usage_chunk_json(const ResponseHeader& header, const JobStats& stats) {
  Json chunk = object_header(header, "text_completion");
  chunk["choices"] = Json::array();
  chunk["usage"] = usage_json(stats);
  return chunk;
}

std::string sse_event(const Json& payload) {
  // Invalid UTF-8 cannot reach here from the decoder, but "replace" keeps a stream alive anyway.
  return "data: " + payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

}  // namespace mxgemma::server
