// mxgemma serve: the OpenAI-compatible HTTP server.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "server/server.h"
#include "util/log.h"

namespace mxgemma::cli {
namespace {

struct ServeOptions {
  ModelOptions model;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;
  std::string model_id;
  int parallel = 4;
  int64_t context_size = 4096;
  int64_t prefill_chunk = 256;
  size_t max_queued = 64;
  double timeout_seconds = 600.0;
  size_t max_body_bytes = 8u << 20;
  ChatTemplateChoice chat_template;
  bool allow_local_files = false;
  bool allow_remote_images = false;
  size_t max_media_bytes = size_t{20} << 20;
};

int serve(const ServeOptions& options) {
  // SIGINT and SIGTERM go to one waiting thread (blocked here before any thread starts, so every
  // thread inherits the mask), which stops the server cleanly.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  LoadedModel loaded = load_model(options.model);
  server::ServerOptions server_options;
  server_options.host = options.host;
  server_options.port = options.port;
  server_options.api_key = options.api_key;
  server_options.model_id = options.model_id;
  server_options.scheduler.parallel = options.parallel;
  server_options.scheduler.context_size =
      std::min<int64_t>(options.context_size, loaded.bundle->text_config().max_position_embeddings);
  server_options.scheduler.prefill_chunk = options.prefill_chunk;
  server_options.scheduler.max_queued = options.max_queued;
  server_options.timeout_seconds = options.timeout_seconds;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.chat_template = options.chat_template;
  server_options.media_sources.allow_local_files = options.allow_local_files;
  server_options.media_sources.allow_remote_images = options.allow_remote_images;
  server_options.media_sources.max_bytes = options.max_media_bytes;
  server_options.media_threads = options.model.threads;

  server::Server server(*loaded.bundle, *loaded.tokenizer, *loaded.model, server_options);
  const int port = server.bind();
  MXG_LOG_INFO("serving %s (%s of weights, loaded in %.2f s) as model \"%s\" on http://%s:%d with %d slots of %lld "
               "tokens%s",
               loaded.bundle->dir().string().c_str(), format_bytes(double(loaded.bundle->tensors().total_bytes())).c_str(),
               loaded.load_seconds, server.model_id().c_str(), options.host.c_str(), port, options.parallel,
               static_cast<long long>(server_options.scheduler.context_size),
               options.api_key.empty() ? "" : ", API key required");

  std::thread signal_waiter([&server, signals] {
    int received = 0;
    sigwait(&signals, &received);
    MXG_LOG_INFO("received signal %d; stopping the server", received);
    server.stop();
  });
  server.serve();
  // serve() also returns when the socket fails; wake the waiter so it can be joined.
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  MXG_LOG_INFO("server stopped");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* command = app.add_subcommand("serve", "Serve the model over an OpenAI-compatible HTTP API");
  command->add_option("-m,--model", options->model.bundle_dir, "Bundle folder (default: $MXGEMMA_MODEL or models/default)");
  command->add_option("--host", options->host, "Address to listen on")->capture_default_str();
  command->add_option("--port", options->port, "TCP port to listen on; 0 picks a free one")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  command->add_option("--api-key", options->api_key, "Require \"Authorization: Bearer KEY\" on the API routes");
  command->add_option("--model-id", options->model_id, "Model name reported by /v1/models (default: the bundle folder name)");

  command->add_option("--parallel", options->parallel, "Slots: requests that generate together")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  command->add_option("--ctx-size", options->context_size, "Context of each slot in tokens (prompt plus completion)")
      ->check(CLI::Range(int64_t(16), int64_t(1) << 20))
      ->capture_default_str();
  command->add_option("--prefill-chunk", options->prefill_chunk, "Prompt tokens per prefill pass between decode steps")
      ->check(CLI::Range(int64_t(1), int64_t(8192)))
      ->capture_default_str();
  command->add_option("--queue", options->max_queued, "Requests that may wait for a slot before the server answers 503")
      ->capture_default_str();

  command->add_option("--timeout", options->timeout_seconds, "Seconds a request may take, queue time included")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--max-body", options->max_body_bytes, "Largest request body in bytes; larger ones get 413")
      ->capture_default_str();

  command->add_flag("--allow-local-files", options->allow_local_files,
                    "Accept file:// image URLs: any image file the server's user can read");
  command->add_flag("--allow-remote-images", options->allow_remote_images,
                    "Fetch http:// and https:// image URLs (10 s timeout, --max-media-bytes limit)");
  command->add_option("--max-media-bytes", options->max_media_bytes, "Largest image or audio file in bytes, after base64 decoding")
      ->check(CLI::Range(size_t(1), size_t(1) << 30))
      ->capture_default_str();
  command->add_option("--chat-template", options->chat_template.file, "Use this Jinja template file instead of the bundle's");
  command->add_option("--chat-template-name", options->chat_template.name, "Use the bundle's chat template of this name");
  command->add_option("-t,--threads", options->model.threads, "Compute threads; 0 uses all hardware threads")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  command->callback([options, &action] { action = [options] { return serve(*options); }; });
}

}  // namespace mxgemma::cli
