// The server's state shared by its route files: server.cpp (text routes, the HTTP plumbing) and
// media_routes.cpp (image and audio parts, /v1/audio/transcriptions).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "engine/media_prompt.h"
#include "kernels/thread_pool.h"
#include "server/media_parts.h"
#include "server/request.h"
#include "server/response.h"
#include "server/server.h"
#include "text/chat_template.h"

namespace mxgemma::server {

using Clock = std::chrono::steady_clock;

struct Server::Impl {
  Impl(const Bundle& bundle, const Tokenizer& tokenizer, Gemma4TextModel& model, ServerOptions server_options);

  using RouteHandler = void (Impl::*)(const httplib::Request&, httplib::Response&);
  void register_routes();
  httplib::Server::Handler wrap(RouteHandler handler, bool needs_key);
  void check_api_key(const httplib::Request& request) const;

  void handle_health(const httplib::Request& request, httplib::Response& response);
  void handle_models(const httplib::Request& request, httplib::Response& response);
  void handle_tokenize(const httplib::Request& request, httplib::Response& response);
  void handle_detokenize(const httplib::Request& request, httplib::Response& response);
  void handle_chat(const httplib::Request& request, httplib::Response& response);
  void handle_completion(const httplib::Request& request, httplib::Response& response);
  void handle_transcription(const httplib::Request& request, httplib::Response& response);

  // Loads the request's image and audio parts and runs the towers on this (the HTTP) thread, one
  // request at a time, with the encoder's own thread pool. Returns null when there are none.
  // Throws ApiError naming the part at fault.
  std::shared_ptr<const MediaPrompt> encode_media(const std::vector<int32_t>& prompt, const std::vector<MediaPart>& parts);
  std::shared_ptr<const MediaPrompt> encode_inputs(const std::vector<int32_t>& prompt, const std::vector<MediaInput>& inputs);
  // The media encoder, created on first use; call with encoder_mutex_ held.
  MediaEncoder& encoder();
  // Rejects a request with 503 before its media is encoded when no queue entry is free for it.
  void check_queue_space();

  std::string render_prompt(const Json& template_request);
  std::shared_ptr<JobStream> submit(JobRequest job);
  // The job of a prompt; its deadline is the server's timeout after `received`.
  JobRequest make_job(std::vector<int32_t> prompt, const GenerationFields& fields, const std::string& id,
                      const char* prompt_param, Clock::time_point received = Clock::now()) const;
  std::string next_id(const char* prefix);

  const Bundle& bundle_;
  const Tokenizer& tokenizer_;
  ServerOptions options_;
  SelectedChatTemplate template_source_;
  std::unique_ptr<ChatTemplate> chat_template_;
  bool fold_tool_messages_ = false;
  std::mutex template_mutex_;  // the Jinja engine is not documented as thread-safe
  std::vector<int32_t> stop_token_ids_;
  Scheduler scheduler_;
  std::mutex encoder_mutex_;  // one request runs the towers at a time
  std::unique_ptr<ThreadPool> encoder_pool_;
  std::unique_ptr<MediaEncoder> encoder_;
  httplib::Server http_;
  std::atomic<uint64_t> request_counter_{0};
  uint64_t id_salt_ = 0;
  int port_ = 0;
  int listen_socket_ = -1;  // captured from httplib to raise its listen backlog
  std::thread serve_thread_;
};


// Sends `body` as JSON with `status`.
void send_json(httplib::Response& response, const Json& body, int status = 200);

}  // namespace mxgemma::server
