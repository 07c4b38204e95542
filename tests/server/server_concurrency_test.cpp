// Several clients at once. Batched decoding gives each stream the output it gets alone, and a
// client that leaves frees its slot. A full queue gets 503. Rounds of 32 streams with random
// disconnects leave the server idle and responsive, with no memory growth.
#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server_test_util.h"

namespace mxgemma::test {
namespace {

Json chat(const std::string& text, int max_tokens, uint64_t seed, bool stream) {
  return {{"messages", Json::array({{{"role", "user"}, {"content", text}}})},
          {"max_tokens", max_tokens},
          {"seed", seed},
          {"stream", stream}};
}

// A request that runs to max_tokens: logit_bias bans every token that ends a reply in the tiny
// fixture (<eos> 1, <turn|> 16 and the tool-call markers 5-11), so a random early stop cannot
// end it before the test has seen it running.
Json long_chat(const std::string& text, int max_tokens, uint64_t seed, bool stream) {
  Json request = chat(text, max_tokens, seed, stream);
  Json bias = Json::object();
  for (int token : {1, 5, 6, 7, 8, 9, 10, 11, 16}) bias[std::to_string(token)] = -100;
  request["logit_bias"] = bias;
  return request;
}

Json health(int port) {
  httplib::Client client("127.0.0.1", port);
  const auto response = client.Get("/health");
  return response ? Json::parse(response->body) : Json();
}

// Waits until the server reports `busy` processing slots, up to `timeout`.
bool wait_for_busy_slots(int port, int busy, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    const Json status = health(port);
    if (status.is_object() && status["slots_processing"] == busy) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(ServerConcurrency, BatchedStreamsMatchSequentialAnswers) {
  TestServer server;
  const int clients = 8;
  std::vector<Json> sequential(clients);
  for (int i = 0; i < clients; ++i) {
    const HttpResult result = post_json(server.port(), "/v1/chat/completions", chat("Story " + std::to_string(i), 32, 100 + i, false));
    ASSERT_EQ(result.status, 200);
    sequential[size_t(i)] = result.body["choices"][0]["message"];
  }

  std::vector<StreamedChat> concurrent(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      concurrent[size_t(i)] = assemble_chat_stream(post_sse(server.port(), "/v1/chat/completions", chat("Story " + std::to_string(i), 32, 100 + i, true)));
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < clients; ++i) {
    SCOPED_TRACE("client " + std::to_string(i));
    EXPECT_EQ(concurrent[size_t(i)].content, sequential[size_t(i)]["content"].get<std::string>());
    EXPECT_FALSE(concurrent[size_t(i)].finish_reason.empty());
  }
}

TEST(ServerConcurrency, DisconnectCancelsGeneration) {
  server::ServerOptions options = TestServer::default_options();
  options.scheduler.parallel = 1;
  TestServer server(options);
  const auto start = std::chrono::steady_clock::now();
  const SseResult partial = post_sse(server.port(), "/v1/chat/completions", long_chat("Go on forever", 900, 1, true), 3);
  EXPECT_EQ(partial.events.size(), 3u);
  EXPECT_FALSE(partial.done);
  // The slot must be free long before 900 tokens could have been generated.
  EXPECT_TRUE(wait_for_busy_slots(server.port(), 0, std::chrono::milliseconds(2000)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  // The freed slot serves the next request.
  EXPECT_EQ(post_json(server.port(), "/v1/chat/completions", chat("Next", 4, 2, false)).status, 200);
}

TEST(ServerConcurrency, NonStreamDisconnectCancelsGeneration) {
  server::ServerOptions options = TestServer::default_options();
  options.scheduler.parallel = 1;
  options.scheduler.context_size = 32768;
  TestServer server(options);
  std::thread client([&] {
    httplib::Client short_lived("127.0.0.1", server.port());
    short_lived.set_read_timeout(0, 300000);  // gives up after 0.3 s, closing the connection
    short_lived.Post("/v1/chat/completions", long_chat("Long answer", 30000, 1, false).dump(), "application/json");
  });
  client.join();
  // The keep-alive byte after a second of silence fails on the closed socket and cancels the job.
  EXPECT_TRUE(wait_for_busy_slots(server.port(), 0, std::chrono::milliseconds(4000)));
}

// Streams `body` and reads it slowly, so the request stays running, until `release` is set; then
// closes the connection, which cancels the request.
void stream_until_released(int port, const Json& body, const std::atomic<bool>& release) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/chat/completions";
  request.body = body.dump();
  request.set_header("Content-Type", "application/json");
  request.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return !release.load();
  };
  client.send(request);
}

TEST(ServerConcurrency, FullQueueAnswers503) {
  server::ServerOptions options = TestServer::default_options();
  options.scheduler.parallel = 1;
  options.scheduler.max_queued = 1;
  options.scheduler.context_size = 32768;
  TestServer server(options);
  std::atomic<bool> release{false};
  // One request takes the only slot and one waits in the queue, so the queue is full.
  std::thread running([&] { stream_until_released(server.port(), long_chat("First", 30000, 1, true), release); });
  const bool first_running = wait_for_busy_slots(server.port(), 1, std::chrono::milliseconds(5000));
  std::thread queued([&] { stream_until_released(server.port(), long_chat("Second", 30000, 2, true), release); });
  bool second_queued = false;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (first_running && !second_queued && std::chrono::steady_clock::now() < end) {
    second_queued = health(server.port())["requests_queued"] == 1;
    if (!second_queued) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  HttpResult rejected;
  if (second_queued) rejected = post_json(server.port(), "/v1/chat/completions", chat("Third", 4, 3, false));
  release = true;
  running.join();
  queued.join();

  EXPECT_TRUE(first_running);
  EXPECT_TRUE(second_queued);
  EXPECT_EQ(rejected.status, 503);
  EXPECT_EQ(rejected.retry_after, "1");
  EXPECT_EQ(rejected.body["error"]["code"], "server_busy");
  EXPECT_TRUE(wait_for_busy_slots(server.port(), 0, std::chrono::milliseconds(3000)));
}

TEST(ServerConcurrency, TimeoutCutsGeneration) {
  server::ServerOptions options = TestServer::default_options();
  options.timeout_seconds = 0.3;
  options.scheduler.context_size = 32768;
  TestServer server(options);
  const HttpResult result = post_json(server.port(), "/v1/chat/completions", long_chat("Long", 30000, 1, false));
  ASSERT_EQ(result.status, 200);
  EXPECT_EQ(result.body["choices"][0]["finish_reason"], "length");
  EXPECT_LT(result.body["usage"]["completion_tokens"], 30000);
}

// Resident memory of this process in KiB, from /proc/self/status.
long resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Sends 32 concurrent streams, a third of which leave early; returns the number of malformed
// complete responses.
int run_disconnect_load(int port, int round) {
  const int clients = 32;
  std::atomic<int> completed{0};
  std::atomic<int> malformed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 random{uint32_t(i + 1000 * round)};
      const bool leave_early = random() % 3 == 0;
      const size_t stop_after = leave_early ? 1 + random() % 8 : 0;
      const SseResult result =
          post_sse(port, "/v1/chat/completions", chat("Client " + std::to_string(i), 24 + i, uint64_t(i), true), stop_after);
      if (leave_early) return;

      const StreamedChat chat_result = assemble_chat_stream(result);
      const bool well_formed = result.status == 200 && result.done && !chat_result.finish_reason.empty() &&
                               result.events.front()["choices"][0]["delta"]["role"] == "assistant";
      if (well_formed) {
        ++completed;
      } else {
        ++malformed;
        ADD_FAILURE() << "client " << i << ": status " << result.status << " (" << result.error << "), done "
                      << result.done << ", " << result.events.size() << " events, raw: " << result.raw.substr(0, 300);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_GT(completed.load(), 0);
  return malformed.load();
}

TEST(ServerConcurrency, LoadWithRandomDisconnects) {
  server::ServerOptions options = TestServer::default_options();
  options.scheduler.parallel = 8;
  TestServer server(options);

  EXPECT_EQ(run_disconnect_load(server.port(), 0), 0);
  EXPECT_TRUE(wait_for_busy_slots(server.port(), 0, std::chrono::milliseconds(3000)));
  const long rss_after_first = resident_kib();
  for (int round = 1; round <= 2; ++round) {
    EXPECT_EQ(run_disconnect_load(server.port(), round), 0);
  }

  EXPECT_TRUE(wait_for_busy_slots(server.port(), 0, std::chrono::milliseconds(3000)));
  EXPECT_EQ(health(server.port())["requests_queued"], 0);
  EXPECT_EQ(post_json(server.port(), "/v1/chat/completions", chat("After the load", 4, 1, false)).status, 200);
  // Slots and caches are allocated once, so more rounds of the same load must not grow memory.
  // The margin covers allocator and thread-stack noise. AddressSanitizer keeps freed memory in
  // quarantine, so there the resident size grows by design and LeakSanitizer checks leaks instead.
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(resident_kib() - rss_after_first, 16 * 1024) << "resident memory grew by more than 16 MiB";
#endif
}

}  // namespace
}  // namespace mxgemma::test
