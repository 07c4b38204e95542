// Writes the output of a scheduler job as an HTTP response: server-sent events for streamed
// requests, one JSON object otherwise. Both go through a chunked content provider, so each
// write also checks the client: a failed write cancels the job at once.
#pragma once

#include <memory>
#include <string>

#include <httplib.h>

#include "server/response.h"
#include "server/scheduler.h"

namespace mxgemma::server {

struct JobResponseOptions {
  ResponseHeader header;
  bool chat = true;  // chat.completion, else text_completion
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// Sets `response` to stream `job` and logs one line per request when it ends. A non-streamed
// response sends a space (valid leading JSON whitespace) after each second without output, so a
// disconnected client is noticed while the model is still working.
void send_job_response(httplib::Response& response, std::shared_ptr<JobStream> job, const JobResponseOptions& options);

}  // namespace mxgemma::server
