#include "server/job_response.h"

#include <chrono>
#include <vector>

#include "util/log.h"

namespace mxgemma::server {
namespace {

using Clock = std::chrono::steady_clock;

// How long a provider call waits for output before it checks the client again.
constexpr std::chrono::milliseconds kPollInterval{200};
// Silence after which a keep-alive byte (non-streamed) or SSE comment (streamed) goes out.
constexpr std::chrono::milliseconds kKeepAliveInterval{1000};

const char* job_finish_name(JobFinish finish) {
  switch (finish) {
    case JobFinish::stop: return "stop";
    case JobFinish::length: return "length";
    case JobFinish::cancelled: return "cancelled";
    case JobFinish::timed_out: return "timeout";
    case JobFinish::failed: return "failed";
  }
  return "";
}

void log_request(const std::string& id, const JobStream& job, const std::string& finish_reason) {
  const JobStats& stats = job.stats();
  // The first token comes out of the prefill, so a decode rate needs two tokens.
  const double decode_rate =
      stats.completion_tokens > 1 ? double(stats.completion_tokens - 1) / std::max(stats.decode_seconds, 1e-9) : 0.0;
  MXG_LOG_INFO("request %s: prompt %lld tokens, completion %lld tokens, queue %.3f s, time to first token %.3f s, "
               "decode %.1f tok/s, finish %s (%s)",
               id.c_str(), static_cast<long long>(stats.prompt_tokens), static_cast<long long>(stats.completion_tokens),
               stats.queue_seconds, stats.time_to_first_token, decode_rate, finish_reason.c_str(),
               job_finish_name(job.finish_reason()));
}

// The state of one response between provider calls.
class ResponseWriter {
 public:
  ResponseWriter(std::shared_ptr<JobStream> job, JobResponseOptions options)
      : job_(std::move(job)), options_(std::move(options)), assembler_("call_" + options_.header.id + "_") {}

  // One call of httplib's content provider: returns false to drop the connection.
  bool provide(httplib::DataSink& sink) {
    if (!sink.is_writable()) return cancel();
    if (options_.stream && !sent_role_) {
      sent_role_ = true;
      if (options_.chat && !write(sink, sse_event(chat_chunk_json(options_.header, {{"role", "assistant"}, {"content", ""}}, "")))) {
        return cancel();
      }
    }

    std::string text;
    const bool done = job_->wait(text, kPollInterval);
    if (!consume(sink, text, done)) return cancel();
    if (!done) {
      if (Clock::now() - last_write_ >= kKeepAliveInterval && !write(sink, options_.stream ? ": keep-alive\n\n" : " ")) {
        return cancel();
      }
      return true;
    }
    if (!finish(sink)) return cancel();
    sink.done();
    return true;
  }

  void cancel_job() { job_->cancel(); }

 private:
  bool cancel() {
    job_->cancel();
    if (!logged_) {
      logged_ = true;
      MXG_LOG_INFO("request %s: the client disconnected; generation cancelled", options_.header.id.c_str());
    }
    return false;
  }

  bool write(httplib::DataSink& sink, const std::string& data) {
    last_write_ = Clock::now();
    return sink.write(data.data(), data.size());
  }

  // Feeds new text through the parser and streams the deltas it completes.
  bool consume(httplib::DataSink& sink, const std::string& text, bool done) {
    if (!options_.chat) {
      completion_text_ += text;
      if (options_.stream && !text.empty()) return write(sink, sse_event(completion_chunk_json(options_.header, text, "")));
      return true;
    }
    std::vector<Json> deltas;
    assembler_.push(text, deltas);
    if (done) assembler_.finish(deltas);
    if (!options_.stream) return true;
    for (const Json& delta : deltas) {
      if (!write(sink, sse_event(chat_chunk_json(options_.header, delta, "")))) return false;
    }
    return true;
  }

  bool finish(httplib::DataSink& sink) {
    const JobFinish finish = job_->finish_reason();
    const JobStats& stats = job_->stats();
    const std::string reason = finish_reason_name(finish, options_.chat && assembler_.has_tool_calls());
    logged_ = true;
    log_request(options_.header.id, *job_, reason);
    for (const std::string& warning : assembler_.warnings()) {
      MXG_LOG_DEBUG("request %s: model output: %s", options_.header.id.c_str(), warning.c_str());
    }

    if (finish == JobFinish::failed || (finish == JobFinish::timed_out && stats.completion_tokens == 0)) {
      // The status line is already out, so the error goes in the body, as OpenAI's streams do.
      const std::string message = finish == JobFinish::failed ? "generation failed: " + job_->error()
                                                              : "the request timed out before the first token; retry later";
      const Json error = {{"error", {{"message", message}, {"type", "server_error"}, {"param", nullptr},
                                     {"code", finish == JobFinish::failed ? "generation_failed" : "timeout"}}}};
      return write(sink, options_.stream ? sse_event(error) + "data: [DONE]\n\n" : error.dump());
    }
    if (!options_.stream) {
      const Json body = options_.chat ? chat_completion_json(options_.header, assembler_.message(), reason, stats)
                                      : completion_json(options_.header, completion_text_, reason, stats);
      return write(sink, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    std::string tail = sse_event(options_.chat ? chat_chunk_json(options_.header, Json::object(), reason)
                                               : completion_chunk_json(options_.header, "", reason));
    if (options_.include_usage) {
      tail += sse_event(options_.chat ? chat_usage_chunk_json(options_.header, stats)
                                      : completion_usage_chunk_json(options_.header, stats));
    }
    tail += "data: [DONE]\n\n";
    return write(sink, tail);
  }

  std::shared_ptr<JobStream> job_;
  JobResponseOptions options_;
  ChatOutputAssembler assembler_;
  std::string completion_text_;
  bool sent_role_ = false;
  bool logged_ = false;
  Clock::time_point last_write_ = Clock::now();
};

}  // namespace

void send_job_response(httplib::Response& response, std::shared_ptr<JobStream> job, const JobResponseOptions& options) {
  auto writer = std::make_shared<ResponseWriter>(std::move(job), options);
  response.set_header("Cache-Control", "no-cache");
  // The releaser runs when the response is destroyed, also after a dropped connection; cancelling
  // a finished job does nothing.
  response.set_chunked_content_provider(
      options.stream ? "text/event-stream" : "application/json",
      [writer](size_t /*offset*/, httplib::DataSink& sink) { return writer->provide(sink); },
      [writer](bool /*success*/) { writer->cancel_job(); });
}

}  // namespace mxgemma::server
