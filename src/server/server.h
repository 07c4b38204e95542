// The OpenAI-compatible HTTP server: routes, bearer-key check, request limits and the streaming
// of scheduler output as server-sent events. HTTP threads parse, validate, encode images and audio,
// enqueue and stream; the scheduler thread runs the text model.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "bundle/bundle.h"
#include "engine/chat_prompt.h"
#include "model/gemma4_text.h"
#include "server/media_parts.h"
#include "server/scheduler.h"
#include "text/tokenizer.h"

namespace mxgemma::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;              // 0: any free port, see Server::port()
  std::string api_key;          // empty: no bearer check
  std::string model_id;         // reported by /v1/models and in responses; empty: the bundle folder name
  SchedulerOptions scheduler;
  double timeout_seconds = 600.0;         // per request, queue time included
  size_t max_body_bytes = 8u << 20;       // larger bodies get 413
  int http_threads = 0;                   // 0: enough for every slot and queued request, plus 8
  ChatTemplateChoice chat_template;
  MediaSourcePolicy media_sources;        // where image URLs may point, and the size of one file
  int media_threads = 0;                  // threads of the image and audio towers; 0: all hardware threads
};

class Server {
 public:
  // Selects and compiles the chat template and starts the scheduler. Throws std::runtime_error
  // naming the bundle when it has no usable chat template.
  Server(const Bundle& bundle, const Tokenizer& tokenizer, Gemma4TextModel& model, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket and returns the port. Throws std::runtime_error naming the
  // address when it cannot bind.
  int bind();
  // Serves on the bound socket until stop(); call bind() first.
  void serve();
  // bind() and serve() on a background thread; returns the port.
  int start();
  // Stops accepting, ends open streams and joins the background thread.
  void stop();

  int port() const;
  const std::string& model_id() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mxgemma::server
