// OpenAI response and stream-chunk JSON, and the mapping of Gemma 4 output (reasoning channel,
// tool calls, content) onto the message fields and deltas that OpenAI clients read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/scheduler.h"
#include "text/gemma4_output.h"

namespace mxgemma::server {

using Json = nlohmann::ordered_json;

// Fields shared by every object of one response.
struct ResponseHeader {
  std::string id;     // "chatcmpl-..." or "cmpl-..."
  std::string model;  // the model id the server reports
  int64_t created = 0;  // Unix seconds
};

// Turns the generated text of a chat completion into stream deltas and the final message. The
// streamed deltas concatenate to the fields of message(), because both come from one parser.
class ChatOutputAssembler {
 public:
  // call_id_prefix + index names each tool call ("call_<request>_0", ...).
  explicit ChatOutputAssembler(std::string call_id_prefix) : call_id_prefix_(std::move(call_id_prefix)) {}

  // Appends to `deltas` the OpenAI delta objects that `text` completes: {"reasoning_content"},
  // {"content"}, and per tool call one delta with index, id, type and name (arguments "") and
  // one with the arguments.
  void push(const std::string& text, std::vector<Json>& deltas);
  // Ends the stream; appends the deltas of the held-back text.
  void finish(std::vector<Json>& deltas);

  // {"role": "assistant", "content", "reasoning_content"?, "tool_calls"?}; content is null when
  // the message is only tool calls, as OpenAI sends it.
  Json message() const;
  bool has_tool_calls() const { return !tool_calls_.empty(); }
  const std::vector<std::string>& warnings() const { return parser_.output().warnings; }

 private:
  void convert(const std::vector<Gemma4Event>& events, std::vector<Json>& deltas);

  std::string call_id_prefix_;
  Gemma4OutputParser parser_;
  Json tool_calls_ = Json::array();
};

// OpenAI's finish_reason for how a job ended: "stop", "length" or "tool_calls".
std::string finish_reason_name(JobFinish finish, bool has_tool_calls);

Json usage_json(const JobStats& stats);

Json chat_completion_json(const ResponseHeader& header, const Json& message, const std::string& finish_reason,
                          const JobStats& stats);
// A chat.completion.chunk; finish_reason empty is null.
Json chat_chunk_json(const ResponseHeader& header, const Json& delta, const std::string& finish_reason);
// The last chunk of stream_options.include_usage: no choices, the usage.
Json chat_usage_chunk_json(const ResponseHeader& header, const JobStats& stats);

Json completion_json(const ResponseHeader& header, const std::string& text, const std::string& finish_reason,
                     const JobStats& stats);
Json completion_chunk_json(const ResponseHeader& header, const std::string& text, const std::string& finish_reason);
Json completion_usage_chunk_json(const ResponseHeader& header, const JobStats& stats);

// "data: <json>\n\n"
std::string sse_event(const Json& payload);

}  // namespace mxgemma::server
