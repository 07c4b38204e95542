#include "server/server.h"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include <httplib.h>

#include "server/job_response.h"
#include "server/server_impl.h"
#include "server/request.h"
#include "server/response.h"
#include "text/chat_template.h"
#include "util/log.h"

namespace mxgemma::server {
namespace {

void send_error(httplib::Response& response, const ApiError& error) {
  response.status = error.status();
  if (error.status() == 503) response.set_header("Retry-After", "1");
  response.set_content(error.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                       "application/json");
}

int64_t unix_seconds() { return int64_t(std::time(nullptr)); }

// Sampling settings: the request's fields, else generation_config.json, else the sampler's.
SamplingParams sampling_for(const GenerationFields& fields, const GenerationConfig& defaults) {
  SamplingParams params = sampling_defaults(defaults);
  if (fields.temperature) params.temperature = *fields.temperature;
  if (fields.top_k) params.top_k = *fields.top_k;
  if (fields.top_p) params.top_p = *fields.top_p;
  if (fields.min_p) params.min_p = *fields.min_p;
  if (fields.repetition_penalty) params.repetition_penalty = *fields.repetition_penalty;
  if (fields.presence_penalty) params.presence_penalty = *fields.presence_penalty;
  if (fields.frequency_penalty) params.frequency_penalty = *fields.frequency_penalty;
  params.logit_bias = fields.logit_bias;
  params.seed = fields.seed ? *fields.seed : std::random_device{}();
  return params;
}

}  // namespace

void send_json(httplib::Response& response, const Json& body, int status) {
  response.status = status;
  response.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

Server::Impl::Impl(const Bundle& bundle, const Tokenizer& tokenizer, Gemma4TextModel& model, ServerOptions server_options)
    : bundle_(bundle),
      tokenizer_(tokenizer),
      options_(std::move(server_options)),
      scheduler_(model, tokenizer, options_.scheduler) {
  if (options_.model_id.empty()) options_.model_id = bundle.dir().filename().string();
  if (options_.model_id.empty()) options_.model_id = bundle.dir().parent_path().filename().string();
  template_source_ = select_chat_template(bundle, options_.chat_template);
  try {
    chat_template_ = std::make_unique<ChatTemplate>(template_source_.source);
    const Json probe = chat_template_context({{"messages", Json::array({{{"role", "user"}, {"content", "probe"}}})}},
                                             "probe", bundle.tokenizer_config());
    fold_tool_messages_ = template_needs_tool_responses(*chat_template_, probe);
  } catch (const std::exception& error) {
    throw std::runtime_error(template_source_.origin + ": " + error.what());
  }

  stop_token_ids_ = bundle.generation_config().eos_token_ids;
  // The model ends its turn with <turn|>, and waits for tool results after <|tool_response>.
  for (const char* marker : {"<turn|>", "<|tool_response>"}) {
    const int32_t id = tokenizer.token_id(marker);
    if (id >= 0 && std::find(stop_token_ids_.begin(), stop_token_ids_.end(), id) == stop_token_ids_.end()) {
      stop_token_ids_.push_back(id);
    }
  }
  id_salt_ = std::random_device{}();

  const int threads = options_.http_threads > 0
                          ? options_.http_threads
                          : options_.scheduler.parallel + int(options_.scheduler.max_queued) + 8;
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http_.set_payload_max_length(options_.max_body_bytes);
  http_.set_socket_options([this](int socket) {
    const int on = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    listen_socket_ = socket;
  });
  http_.set_keep_alive_timeout(30);
  register_routes();
}

void Server::Impl::register_routes() {
  struct Route {
    const char* method;
    const char* path;
    RouteHandler handler;
    bool needs_key;
  };
  const Route routes[] = {
      {"GET", "/health", &Impl::handle_health, false},
      {"GET", "/v1/models", &Impl::handle_models, true},
      {"POST", "/v1/chat/completions", &Impl::handle_chat, true},
      {"POST", "/v1/completions", &Impl::handle_completion, true},
      {"POST", "/v1/audio/transcriptions", &Impl::handle_transcription, true},
      {"POST", "/tokenize", &Impl::handle_tokenize, true},
      {"POST", "/detokenize", &Impl::handle_detokenize, true},
  };
  for (const Route& route : routes) {
    if (std::string(route.method) == "GET") http_.Get(route.path, wrap(route.handler, route.needs_key));
    else http_.Post(route.path, wrap(route.handler, route.needs_key));
  }

  // Errors that httplib sends itself (unknown path, body over the limit) get OpenAI's error body.
  http_.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty() || response.status == 503) return;
    if (response.status == 413 &&
        request.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0) {
      // cpp-httplib caps form-encoded bodies at 8 KiB whatever the payload limit, and curl -d sends
      // that content type unless another is given.
      send_error(response, ApiError(413, "invalid_request_error", "request_too_large", "",
                                    "a form-encoded request body may be at most 8 KiB; send JSON with the header "
                                    "'Content-Type: application/json'"));
    } else if (response.status == 413) {
      send_error(response, ApiError(413, "invalid_request_error", "request_too_large", "",
                                    "the request body is larger than the server's limit; send a smaller request"));
    } else if (response.status == 404) {
      send_error(response, ApiError(404, "invalid_request_error", "not_found", "",
                                    "unknown endpoint " + request.method + " " + request.path));
    } else {
      send_error(response, ApiError(response.status, "invalid_request_error", "", "",
                                    "the server could not handle " + request.method + " " + request.path));
    }
  });
}

httplib::Server::Handler Server::Impl::wrap(RouteHandler handler, bool needs_key) {
  return [this, handler, needs_key](const httplib::Request& request, httplib::Response& response) {
    try {
      if (needs_key) check_api_key(request);
      // cpp-httplib 0.11 applies the payload limit only to bodies with a Content-Length; a chunked
      // body is read whole, so its size is checked here.
      if (request.body.size() > options_.max_body_bytes) {
        throw ApiError(413, "invalid_request_error", "request_too_large", "",
                       "the request body is " + std::to_string(request.body.size()) + " bytes, over the server's limit of " +
                           std::to_string(options_.max_body_bytes) + "; send a smaller request");
      }
      (this->*handler)(request, response);
    } catch (const ApiError& error) {
      MXG_LOG_DEBUG("%s %s: %d %s", request.method.c_str(), request.path.c_str(), error.status(), error.what());
      send_error(response, error);
    } catch (const std::invalid_argument& error) {
      send_error(response, ApiError(400, "invalid_request_error", "invalid_value", "", error.what()));
    } catch (const std::exception& error) {
      MXG_LOG_ERROR("%s %s failed: %s", request.method.c_str(), request.path.c_str(), error.what());
      send_error(response, ApiError(500, "server_error", "internal_error", "", error.what()));
    }
  };
}

void Server::Impl::check_api_key(const httplib::Request& request) const {
  if (options_.api_key.empty()) return;
  // The scheme name is case-insensitive (RFC 9110 section 11.1); the key is not.
  const std::string header = request.get_header_value("Authorization");
  const std::string scheme = "bearer ";
  const bool bearer = header.size() >= scheme.size() &&
                      std::equal(scheme.begin(), scheme.end(), header.begin(),
                                 [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
  if (!bearer || header.substr(scheme.size()) != options_.api_key) {
    throw ApiError(401, "invalid_request_error", "invalid_api_key", "",
                   "invalid or missing API key: send the header \"Authorization: Bearer <key>\" with the server's --api-key");
  }
}

void Server::Impl::handle_health(const httplib::Request&, httplib::Response& response) {
  const int busy = scheduler_.busy_slots();
  send_json(response, {{"status", "ok"},
                       {"slots_idle", options_.scheduler.parallel - busy},
                       {"slots_processing", busy},
                       {"requests_queued", scheduler_.queued()}});
}

void Server::Impl::handle_models(const httplib::Request&, httplib::Response& response) {
  const Json model = {{"id", options_.model_id}, {"object", "model"}, {"created", unix_seconds()},
                      {"owned_by", "mxgemma"}, {"context_length", options_.scheduler.context_size}};
  send_json(response, {{"object", "list"}, {"data", Json::array({model})}});
}

void Server::Impl::handle_tokenize(const httplib::Request& request, httplib::Response& response) {
  const Json body = parse_body(request.body);
  const auto content = body.find("content");
  if (content == body.end()) fail_invalid("content", "missing_field", "invalid request: \"content\" is missing");
  if (!content->is_string()) fail_invalid("content", "invalid_type", "invalid content: expected a string");
  bool add_special = false;
  if (const auto flag = body.find("add_special"); flag != body.end() && !flag->is_null()) {
    if (!flag->is_boolean()) fail_invalid("add_special", "invalid_type", "invalid add_special: expected a boolean");
    add_special = flag->get<bool>();
  }
  send_json(response, {{"tokens", tokenizer_.encode(content->get<std::string>(), add_special, /*parse_special=*/true)}});
}

void Server::Impl::handle_detokenize(const httplib::Request& request, httplib::Response& response) {
  const Json body = parse_body(request.body);
  const auto tokens = body.find("tokens");
  if (tokens == body.end()) fail_invalid("tokens", "missing_field", "invalid request: \"tokens\" is missing");
  if (!tokens->is_array()) fail_invalid("tokens", "invalid_type", "invalid tokens: expected an array of token ids");
  std::vector<int32_t> ids;
  for (size_t i = 0; i < tokens->size(); ++i) {
    const Json& token = (*tokens)[i];
    if (!token.is_number_integer() || token.get<int64_t>() < 0 || token.get<int64_t>() >= tokenizer_.vocab_size()) {
      fail_invalid("tokens[" + std::to_string(i) + "]", "invalid_value",
                   "invalid tokens[" + std::to_string(i) + "]: not a token id in [0, " +
                       std::to_string(tokenizer_.vocab_size()) + ")");
    }
    ids.push_back(token.get<int32_t>());
  }
  send_json(response, {{"content", tokenizer_.decode(ids)}});
}

std::string Server::Impl::render_prompt(const Json& template_request) {
  Json context;
  try {
    context = chat_template_context(template_request, "request", bundle_.tokenizer_config());
  } catch (const std::invalid_argument& error) {
    fail_invalid("messages", "invalid_value", error.what());
  }
  if (fold_tool_messages_) context["messages"] = fold_tool_messages(context["messages"]);
  try {
    std::lock_guard<std::mutex> lock(template_mutex_);
    return chat_template_->render(context);
  } catch (const std::exception& error) {
    // raise_exception() in a template reports a conversation the model cannot take.
    fail_invalid("messages", "template_error", "the chat template rejected the conversation: " + std::string(error.what()));
  }
}

JobRequest Server::Impl::make_job(std::vector<int32_t> prompt, const GenerationFields& fields, const std::string& id,
                                  const char* prompt_param, Clock::time_point received) const {
  const int64_t context = options_.scheduler.context_size;
  if (int64_t(prompt.size()) >= context) {
    fail_invalid(prompt_param, "context_length_exceeded",
                 "the prompt is " + std::to_string(prompt.size()) + " tokens, but the context holds " +
                     std::to_string(context) + " tokens (prompt plus completion); shorten the prompt");
  }
  JobRequest job;
  job.id = id;
  job.prompt = std::move(prompt);
  job.max_tokens = fields.max_tokens.value_or(context);
  job.sampling = sampling_for(fields, bundle_.generation_config());
  for (const auto& [token, bias] : job.sampling.logit_bias) {
    if (token >= tokenizer_.vocab_size()) {
      fail_invalid("logit_bias", "invalid_value", "invalid logit_bias: token id " + std::to_string(token) +
                                                      " is outside the vocabulary of " + std::to_string(tokenizer_.vocab_size()));
    }
  }
  try {
    validate(job.sampling);
  } catch (const std::invalid_argument& error) {
    fail_invalid("", "invalid_value", error.what());
  }
  job.stop_token_ids = stop_token_ids_;
  job.stop_strings = fields.stop;
  job.deadline = received + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(options_.timeout_seconds));
  return job;
}

std::shared_ptr<JobStream> Server::Impl::submit(JobRequest job) {
  const std::string id = job.id;
  std::shared_ptr<JobStream> stream = scheduler_.submit(std::move(job));
  if (!stream) {
    MXG_LOG_WARN("request %s: rejected with 503, %zu requests already wait for a slot", id.c_str(), scheduler_.queued());
    throw ApiError(503, "server_error", "server_busy", "",
                   "the server is busy: every slot is generating and the queue is full; retry after a second");
  }
  return stream;
}

std::string Server::Impl::next_id(const char* prefix) {
  char text[48];
  std::snprintf(text, sizeof text, "%s-%08llx%llu", prefix, static_cast<unsigned long long>(id_salt_ & 0xffffffffu),
                static_cast<unsigned long long>(++request_counter_));
  return text;
}

void Server::Impl::handle_chat(const httplib::Request& request, httplib::Response& response) {
  const ChatRequest chat = parse_chat_request(parse_body(request.body));
  // Tool calls are read and forced in Gemma 4's syntax, whose markers are tokens of its vocabulary.
  // A model without them (Gemma 3) cannot be made to call a tool.
  if ((chat.tool_choice == ToolChoice::required || chat.tool_choice == ToolChoice::function) &&
      (tokenizer_.token_id("<|tool_call>") < 0 || tokenizer_.token_id("<tool_call|>") < 0)) {
    fail_invalid("tool_choice", "unsupported_value",
                 "tool_choice \"required\" or a named function needs a model with Gemma 4 tool-call tokens; "
                 "this model's vocabulary has no <|tool_call>");
  }
  const Clock::time_point received = Clock::now();
  const std::string id = next_id("chatcmpl");
  const std::string prompt_text = render_prompt(chat.template_request);
  std::vector<int32_t> prompt = tokenizer_.encode(prompt_text, /*add_bos=*/false, /*parse_special=*/true);
  const std::shared_ptr<const MediaPrompt> media = encode_media(prompt, chat.media);
  if (media) prompt = media->tokens;
  JobRequest job = make_job(std::move(prompt), chat.generation, id, "messages", received);
  job.media = media;

  // "required" and a named function force the opening of a call (and the name), so the model
  // can only fill in the arguments.
  if (chat.tool_choice == ToolChoice::required || chat.tool_choice == ToolChoice::function) {
    std::string opening = "<|tool_call>call:";
    if (chat.tool_choice == ToolChoice::function) opening += chat.tool_choice_name + "{";
    job.forced_tokens = tokenizer_.encode(opening, /*add_bos=*/false, /*parse_special=*/true);
  }
  if (chat.has_tools && chat.tool_choice != ToolChoice::none) {
    for (const Json& tool : chat.template_request["tools"]) {
      const std::string name = tool["function"]["name"];
      if (chat.tool_choice != ToolChoice::function || name == chat.tool_choice_name) job.tool_names.push_back(name);
    }
  }
  MXG_LOG_DEBUG("request %s: chat, %zu prompt tokens, stream %d", id.c_str(), job.prompt.size(), int(chat.generation.stream));

  JobResponseOptions options;
  options.header = {id, options_.model_id, unix_seconds()};
  options.chat = true;
  options.stream = chat.generation.stream;
  options.include_usage = chat.generation.include_usage;
  send_job_response(response, submit(std::move(job)), options);
}

void Server::Impl::handle_completion(const httplib::Request& request, httplib::Response& response) {
  const CompletionRequest completion = parse_completion_request(parse_body(request.body));
  const std::string id = next_id("cmpl");
  std::vector<int32_t> prompt = completion.prompt_tokens;
  if (completion.prompt_text) {
    prompt = tokenizer_.encode(*completion.prompt_text, /*add_bos=*/true, /*parse_special=*/true);
  }
  for (const int32_t token : prompt) {
    if (token >= tokenizer_.vocab_size()) {
      fail_invalid("prompt", "invalid_value", "invalid prompt: token id " + std::to_string(token) +
                                                  " is outside the vocabulary of " + std::to_string(tokenizer_.vocab_size()));
    }
  }
  JobRequest job = make_job(std::move(prompt), completion.generation, id, "prompt");

  JobResponseOptions options;
  options.header = {id, options_.model_id, unix_seconds()};
  options.chat = false;
  options.stream = completion.generation.stream;
  options.include_usage = completion.generation.include_usage;
  send_job_response(response, submit(std::move(job)), options);
}

Server::Server(const Bundle& bundle, const Tokenizer& tokenizer, Gemma4TextModel& model, ServerOptions options)
    : impl_(std::make_unique<Impl>(bundle, tokenizer, model, std::move(options))) {}

Server::~Server() { stop(); }

int Server::bind() {
  const ServerOptions& options = impl_->options_;
  const int port = options.port == 0 ? impl_->http_.bind_to_any_port(options.host)
                                     : (impl_->http_.bind_to_port(options.host, options.port) ? options.port : -1);
  if (port < 0) {
    throw std::runtime_error("cannot listen on " + options.host + ":" + std::to_string(options.port) +
                             ": the address is in use or not local; pick another --host or --port");
  }
  // httplib 0.11 listens with a backlog of 5, so a burst of clients overflows the accept queue
  // and some connections fail. listen() again only raises the backlog of the bound socket.
  if (impl_->listen_socket_ >= 0) ::listen(impl_->listen_socket_, SOMAXCONN);
  impl_->port_ = port;
  return port;
}

void Server::serve() { impl_->http_.listen_after_bind(); }

int Server::start() {
  const int port = bind();
  impl_->serve_thread_ = std::thread([this] { serve(); });
  // listen_after_bind() marks the server running just before it accepts; httplib 0.11 offers
  // nothing to wait on.
  while (!impl_->http_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return port;
}

void Server::stop() {
  if (!impl_) return;
  impl_->http_.stop();
  if (impl_->serve_thread_.joinable()) impl_->serve_thread_.join();
}

int Server::port() const { return impl_->port_; }

const std::string& Server::model_id() const { return impl_->options_.model_id; }

}  // namespace mxgemma::server
