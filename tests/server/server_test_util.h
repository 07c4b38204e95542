// Helpers of the server tests: the tiny fixture model loaded once, a server on an ephemeral
// loopback port, and an SSE client built on httplib.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "kernels/thread_pool.h"
#include "model/gemma4_text.h"
#include "server/server.h"
#include "text/tokenizer.h"

namespace mxgemma::test {

using Json = nlohmann::ordered_json;

// The tiny-hf fixture: random weights, real Gemma 4 tokenizer layout and chat template.
struct TinyModel {
  std::unique_ptr<Bundle> bundle;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Gemma4TextModel> model;
};

inline TinyModel& tiny_model() {
  static TinyModel loaded = [] {
    TinyModel tiny;
    const std::filesystem::path dir = std::filesystem::path(MXGEMMA_FIXTURE_DIR) / "generated" / "tiny-hf";
    tiny.bundle = std::make_unique<Bundle>(Bundle::open(dir));
    tiny.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_file(tiny.bundle->tokenizer_json_path()));
    tiny.pool = std::make_unique<ThreadPool>(2);
    tiny.model = std::make_unique<Gemma4TextModel>(*tiny.bundle, *tiny.pool);
    return tiny;
  }();
  return loaded;
}

// A server over the tiny model on 127.0.0.1 and a free port. Only one may live at a time,
// because the model runs one forward pass at a time.
class TestServer {
 public:
  explicit TestServer(server::ServerOptions options = default_options()) {
    options.host = "127.0.0.1";
    options.port = 0;
    TinyModel& tiny = tiny_model();
    server_ = std::make_unique<server::Server>(*tiny.bundle, *tiny.tokenizer, *tiny.model, options);
    port_ = server_->start();
  }
  ~TestServer() { server_->stop(); }

  static server::ServerOptions default_options() {
    server::ServerOptions options;
    options.scheduler.parallel = 4;
    options.scheduler.context_size = 1024;
    options.scheduler.prefill_chunk = 64;
    options.scheduler.max_queued = 64;
    return options;
  }

  int port() const { return port_; }
  std::unique_ptr<httplib::Client> client() const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client->set_read_timeout(60, 0);
    return client;
  }

 private:
  std::unique_ptr<server::Server> server_;
  int port_ = 0;
};

// The parsed `data:` events of one SSE response.
struct SseResult {
  int status = 0;
  std::vector<Json> events;  // JSON payloads in order
  bool done = false;         // "data: [DONE]" arrived
  std::string raw;
  std::string error;  // the client error when the request failed
};

// Posts `body` and reads the event stream. `stop_after` > 0 closes the connection after that
// many events, as a client that goes away.
inline SseResult post_sse(int port, const std::string& path, const Json& body, size_t stop_after = 0,
                          const std::string& api_key = "") {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  SseResult result;
  std::string buffer;
  httplib::Request request;
  request.method = "POST";
  request.path = path;
  request.body = body.dump();
  request.set_header("Content-Type", "application/json");
  if (!api_key.empty()) request.set_header("Authorization", "Bearer " + api_key);
  request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    result.raw.append(data, size);
    buffer.append(data, size);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      const std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;  // SSE comments such as keep-alives
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") {
        result.done = true;
      } else {
        result.events.push_back(Json::parse(payload));
      }
    }
    return stop_after == 0 || result.events.size() < stop_after;
  };
  const httplib::Result response = client.send(request);
  if (response) result.status = response->status;
  else result.error = httplib::to_string(response.error());
  return result;
}

struct HttpResult {
  int status = 0;
  Json body;
  std::string retry_after;
};

inline HttpResult post_json(int port, const std::string& path, const std::string& body, const std::string& api_key = "") {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  httplib::Headers headers;
  if (!api_key.empty()) headers.emplace("Authorization", "Bearer " + api_key);
  const httplib::Result response = client.Post(path.c_str(), headers, body, "application/json");
  HttpResult result;
  if (!response) return result;
  result.status = response->status;
  result.body = Json::parse(response->body, nullptr, false);
  result.retry_after = response->get_header_value("Retry-After");
  return result;
}

inline HttpResult post_json(int port, const std::string& path, const Json& body, const std::string& api_key = "") {
  return post_json(port, path, body.dump(), api_key);
}

// The fields of a streamed chat completion, concatenated from its deltas.
struct StreamedChat {
  std::string content;
  std::string reasoning;
  Json tool_calls = Json::array();  // assembled as OpenAI clients do: by index
  std::string finish_reason;
  Json usage;
};

inline StreamedChat assemble_chat_stream(const SseResult& stream) {
  StreamedChat chat;
  for (const Json& event : stream.events) {
    if (event.contains("usage")) chat.usage = event["usage"];
    if (!event.contains("choices") || event["choices"].empty()) continue;
    const Json& choice = event["choices"][0];
    if (!choice["finish_reason"].is_null()) chat.finish_reason = choice["finish_reason"];
    const Json& delta = choice["delta"];
    if (delta.contains("content") && delta["content"].is_string()) chat.content += delta["content"].get<std::string>();
    if (delta.contains("reasoning_content")) chat.reasoning += delta["reasoning_content"].get<std::string>();
    if (delta.contains("tool_calls")) {
      for (const Json& call : delta["tool_calls"]) {
        const size_t index = call["index"];
        while (chat.tool_calls.size() <= index) {
          chat.tool_calls.push_back({{"id", ""}, {"type", "function"}, {"function", {{"name", ""}, {"arguments", ""}}}});
        }
        Json& target = chat.tool_calls[index];
        if (call.contains("id")) target["id"] = call["id"];
        if (call.contains("function") && call["function"].contains("name")) target["function"]["name"] = call["function"]["name"];
        if (call.contains("function") && call["function"].contains("arguments")) {
          target["function"]["arguments"] =
              target["function"]["arguments"].get<std::string>() + call["function"]["arguments"].get<std::string>();
        }
      }
    }
  }
  return chat;
}

}  // namespace mxgemma::test
