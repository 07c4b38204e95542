// Endpoints of the OpenAI-compatible server against the tiny fixture model.
#include <cctype>
#include <string>

#include <gtest/gtest.h>

#include "server_test_util.h"

namespace mxgemma::test {
namespace {

Json user_chat(const std::string& text, int max_tokens, uint64_t seed) {
  return {{"model", "tiny-hf"},
          {"messages", Json::array({{{"role", "user"}, {"content", text}}})},
          {"max_tokens", max_tokens},
          {"seed", seed}};
}

TEST(ServerEndpoints, HealthReportsIdleSlots) {
  TestServer server;
  const auto response = server.client()->Get("/health");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  const Json body = Json::parse(response->body);
  EXPECT_EQ(body["status"], "ok");
  EXPECT_EQ(body["slots_idle"], 4);
  EXPECT_EQ(body["slots_processing"], 0);
}

TEST(ServerEndpoints, ModelsListsTheBundle) {
  TestServer server;
  const auto response = server.client()->Get("/v1/models");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  const Json body = Json::parse(response->body);
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), 1u);
  EXPECT_EQ(body["data"][0]["id"], "tiny-hf");
  EXPECT_EQ(body["data"][0]["object"], "model");
}

TEST(ServerEndpoints, TokenizeDetokenizeRoundTrip) {
  TestServer server;
  const HttpResult tokens = post_json(server.port(), "/tokenize", Json{{"content", "Hello world"}});
  ASSERT_EQ(tokens.status, 200);
  const std::vector<int32_t> expected = tiny_model().tokenizer->encode("Hello world", false);
  EXPECT_EQ(tokens.body["tokens"].get<std::vector<int32_t>>(), expected);

  const HttpResult with_bos = post_json(server.port(), "/tokenize", Json{{"content", "Hello"}, {"add_special", true}});
  ASSERT_EQ(with_bos.status, 200);
  EXPECT_EQ(with_bos.body["tokens"][0], tiny_model().tokenizer->bos_id());

  const HttpResult text = post_json(server.port(), "/detokenize", Json{{"tokens", tokens.body["tokens"]}});
  ASSERT_EQ(text.status, 200);
  EXPECT_EQ(text.body["content"], "Hello world");
}

TEST(ServerEndpoints, DetokenizeRejectsUnknownId) {
  TestServer server;
  const HttpResult result = post_json(server.port(), "/detokenize", Json{{"tokens", {1, 99999999}}});
  EXPECT_EQ(result.status, 400);
  EXPECT_EQ(result.body["error"]["param"], "tokens[1]");
}

TEST(ServerEndpoints, ChatCompletionHasOpenAiShape) {
  TestServer server;
  const HttpResult result = post_json(server.port(), "/v1/chat/completions", user_chat("Hi there", 6, 3));
  ASSERT_EQ(result.status, 200);
  const Json& body = result.body;
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(body["model"], "tiny-hf");
  EXPECT_TRUE(body["created"].is_number_integer());
  ASSERT_EQ(body["choices"].size(), 1u);
  const Json& choice = body["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_TRUE(choice["message"]["content"].is_string());
  EXPECT_TRUE(choice["finish_reason"] == "length" || choice["finish_reason"] == "stop");
  EXPECT_GT(body["usage"]["prompt_tokens"], 0);
  EXPECT_LE(body["usage"]["completion_tokens"], 6);
  EXPECT_EQ(body["usage"]["total_tokens"],
            body["usage"]["prompt_tokens"].get<int>() + body["usage"]["completion_tokens"].get<int>());
}

TEST(ServerEndpoints, SameSeedSameAnswer) {
  TestServer server;
  const HttpResult first = post_json(server.port(), "/v1/chat/completions", user_chat("Tell me", 24, 11));
  const HttpResult second = post_json(server.port(), "/v1/chat/completions", user_chat("Tell me", 24, 11));
  ASSERT_EQ(first.status, 200);
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(first.body["choices"][0]["message"], second.body["choices"][0]["message"]);
}

// The deltas of a stream must add up to the non-streamed message for the same seed.
void expect_stream_matches(int port, Json request) {
  request["stream"] = false;
  const HttpResult whole = post_json(port, "/v1/chat/completions", request);
  ASSERT_EQ(whole.status, 200) << whole.body.dump();
  request["stream"] = true;
  request["stream_options"] = {{"include_usage", true}};
  const SseResult stream = post_sse(port, "/v1/chat/completions", request);
  ASSERT_EQ(stream.status, 200);
  ASSERT_TRUE(stream.done);
  ASSERT_FALSE(stream.events.empty());
  EXPECT_EQ(stream.events.front()["object"], "chat.completion.chunk");
  EXPECT_EQ(stream.events.front()["choices"][0]["delta"]["role"], "assistant");

  const StreamedChat chat = assemble_chat_stream(stream);
  const Json& message = whole.body["choices"][0]["message"];
  EXPECT_EQ(chat.content, message["content"].is_null() ? "" : message["content"].get<std::string>());
  EXPECT_EQ(chat.reasoning, message.value("reasoning_content", ""));
  // Tool call ids name the request, so they differ between the two requests.
  Json streamed_calls = chat.tool_calls;
  Json whole_calls = message.value("tool_calls", Json::array());
  for (Json& call : streamed_calls) {
    EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
    call.erase("id");
  }
  for (Json& call : whole_calls) call.erase("id");
  EXPECT_EQ(streamed_calls, whole_calls);
  EXPECT_EQ(chat.finish_reason, whole.body["choices"][0]["finish_reason"]);
  EXPECT_EQ(chat.usage, whole.body["usage"]);
  // The usage chunk comes last and has no choices.
  EXPECT_TRUE(stream.events.back()["choices"].empty());
}

TEST(ServerStreaming, StreamEqualsNonStream) {
  TestServer server;
  for (uint64_t seed : {1, 2, 3, 4}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    expect_stream_matches(server.port(), user_chat("Write a poem about the sea", 48, seed));
  }
}

TEST(ServerStreaming, StreamEqualsNonStreamWithThinking) {
  TestServer server;
  Json request = user_chat("Think first", 40, 9);
  request["chat_template_kwargs"] = {{"enable_thinking", true}};
  expect_stream_matches(server.port(), request);
  request.erase("chat_template_kwargs");
  request["reasoning_effort"] = "high";
  expect_stream_matches(server.port(), request);
}

TEST(ServerStreaming, ThinkingChangesThePrompt) {
  TestServer server;
  Json request = user_chat("Hello", 1, 1);
  const HttpResult plain = post_json(server.port(), "/v1/chat/completions", request);
  request["chat_template_kwargs"] = {{"enable_thinking", true}};
  const HttpResult thinking = post_json(server.port(), "/v1/chat/completions", request);
  ASSERT_EQ(plain.status, 200);
  ASSERT_EQ(thinking.status, 200);
  // Thinking on adds the system turn with <|think|>; thinking off adds the empty thought channel.
  EXPECT_NE(plain.body["usage"]["prompt_tokens"], thinking.body["usage"]["prompt_tokens"]);
}

TEST(ServerStreaming, StreamNeverContainsReplacementFromSplitCharacters) {
  TestServer server;
  // Byte-fallback tokens: greedy output of the random model that includes multi-byte characters
  // is compared with its non-streamed form, which decodes all ids at once.
  Json request = user_chat("Ünïcödé ✓ 日本語", 64, 5);
  request["temperature"] = 1.5;
  expect_stream_matches(server.port(), request);
}

TEST(ServerStreaming, StopStringEndsTheAnswer) {
  TestServer server;
  // A seeded reply long enough to cut: the random model often ends its turn early.
  Json request;
  std::string content;
  // The stop string is two ASCII characters after the first one, so it splits no character.
  auto ascii_pair = [](const std::string& text) {
    for (size_t i = 1; i + 1 < text.size(); ++i) {
      if (std::isalnum(static_cast<unsigned char>(text[i])) && std::isalnum(static_cast<unsigned char>(text[i + 1]))) return i;
    }
    return std::string::npos;
  };
  for (uint64_t seed = 1; seed < 50 && ascii_pair(content) == std::string::npos; ++seed) {
    request = user_chat("Count", 40, seed);
    const HttpResult full = post_json(server.port(), "/v1/chat/completions", request);
    ASSERT_EQ(full.status, 200);
    content = full.body["choices"][0]["message"]["content"].get<std::string>();
  }
  ASSERT_NE(ascii_pair(content), std::string::npos) << "no seed gave an answer to cut";
  const std::string stop = content.substr(ascii_pair(content), 2);
  request["stop"] = Json::array({stop, "never appears in the answer"});
  const HttpResult cut = post_json(server.port(), "/v1/chat/completions", request);
  ASSERT_EQ(cut.status, 200);
  const std::string cut_content = cut.body["choices"][0]["message"]["content"];
  EXPECT_EQ(cut_content, content.substr(0, content.find(stop)));
  EXPECT_EQ(cut.body["choices"][0]["finish_reason"], "stop");

  request["stream"] = true;
  const StreamedChat streamed = assemble_chat_stream(post_sse(server.port(), "/v1/chat/completions", request));
  EXPECT_EQ(streamed.content, cut_content);
  EXPECT_EQ(streamed.finish_reason, "stop");
}

TEST(ServerCompletions, TextPromptStreamEqualsNonStream) {
  TestServer server;
  Json request = {{"prompt", "Once upon a time"}, {"max_tokens", 32}, {"seed", 4}};
  const HttpResult whole = post_json(server.port(), "/v1/completions", request);
  ASSERT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body["object"], "text_completion");
  EXPECT_EQ(whole.body["choices"][0]["index"], 0);
  // The string prompt is encoded with BOS.
  EXPECT_EQ(whole.body["usage"]["prompt_tokens"], tiny_model().tokenizer->encode("Once upon a time", true).size());

  request["stream"] = true;
  request["stream_options"] = {{"include_usage", true}};
  const SseResult stream = post_sse(server.port(), "/v1/completions", request);
  ASSERT_TRUE(stream.done);
  std::string text;
  std::string finish_reason;
  for (const Json& event : stream.events) {
    if (event["choices"].empty()) continue;
    text += event["choices"][0]["text"].get<std::string>();
    if (!event["choices"][0]["finish_reason"].is_null()) finish_reason = event["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, whole.body["choices"][0]["text"]);
  EXPECT_EQ(finish_reason, whole.body["choices"][0]["finish_reason"]);
  EXPECT_EQ(stream.events.back()["usage"], whole.body["usage"]);
}

TEST(ServerCompletions, TokenPromptEqualsTextPrompt) {
  TestServer server;
  const std::vector<int32_t> ids = tiny_model().tokenizer->encode("Once upon a time", true);
  const HttpResult by_text = post_json(server.port(), "/v1/completions", Json{{"prompt", "Once upon a time"}, {"max_tokens", 16}, {"seed", 8}});
  const HttpResult by_ids = post_json(server.port(), "/v1/completions", Json{{"prompt", ids}, {"max_tokens", 16}, {"seed", 8}});
  ASSERT_EQ(by_text.status, 200);
  ASSERT_EQ(by_ids.status, 200);
  EXPECT_EQ(by_text.body["choices"][0]["text"], by_ids.body["choices"][0]["text"]);
}

TEST(ServerTools, ToolRoundTripRenders) {
  TestServer server;
  const Json tools = Json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Weather of a city",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
  Json messages = Json::array();
  messages.push_back({{"role", "user"}, {"content", "Weather in Paris?"}});
  messages.push_back({{"role", "assistant"},
                      {"content", nullptr},
                      {"tool_calls", Json::parse(R"([{"id": "call_1", "type": "function",
                          "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}])")}});
  messages.push_back({{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny, 21 C"}});
  const Json request = {{"messages", messages}, {"tools", tools}, {"max_tokens", 8}, {"seed", 1}};
  const HttpResult result = post_json(server.port(), "/v1/chat/completions", request);
  ASSERT_EQ(result.status, 200) << result.body.dump();

  // The tool result must reach the prompt: a different result gives a different prompt length.
  Json longer = request;
  longer["messages"][2]["content"] = "sunny, 21 C, light wind from the west, no rain expected";
  const HttpResult longer_result = post_json(server.port(), "/v1/chat/completions", longer);
  ASSERT_EQ(longer_result.status, 200);
  EXPECT_GT(longer_result.body["usage"]["prompt_tokens"], result.body["usage"]["prompt_tokens"]);
}

TEST(ServerTools, ToolChoiceNoneHidesTools) {
  TestServer server;
  const Json tools = Json::parse(R"([{"type": "function", "function": {"name": "lookup",
      "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}])");
  Json request = user_chat("Search", 1, 1);
  request["tools"] = tools;
  const HttpResult with_tools = post_json(server.port(), "/v1/chat/completions", request);
  request["tool_choice"] = "none";
  const HttpResult hidden = post_json(server.port(), "/v1/chat/completions", request);
  request.erase("tools");
  request.erase("tool_choice");
  const HttpResult without = post_json(server.port(), "/v1/chat/completions", request);
  ASSERT_EQ(with_tools.status, 200);
  ASSERT_EQ(hidden.status, 200);
  EXPECT_EQ(hidden.body["usage"]["prompt_tokens"], without.body["usage"]["prompt_tokens"]);
  EXPECT_GT(with_tools.body["usage"]["prompt_tokens"], without.body["usage"]["prompt_tokens"]);
}

const char* kWeatherTools = R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
  {"type": "function", "function": {"name": "get_time", "description": "Local time of a city",
   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])";

TEST(ServerTools, RequiredAlwaysYieldsCall) {
  TestServer server;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Json request = user_chat("What is the weather in Paris?", 24, seed);
    request["tools"] = Json::parse(kWeatherTools);
    request["tool_choice"] = "required";
    const HttpResult result = post_json(server.port(), "/v1/chat/completions", request);
    ASSERT_EQ(result.status, 200) << result.body.dump();
    const Json& choice = result.body["choices"][0];
    EXPECT_EQ(choice["finish_reason"], "tool_calls");
    ASSERT_TRUE(choice["message"].contains("tool_calls")) << choice.dump();
    const Json& call = choice["message"]["tool_calls"][0];
    EXPECT_TRUE(call["function"]["name"] == "get_weather" || call["function"]["name"] == "get_time");
    EXPECT_TRUE(Json::parse(call["function"]["arguments"].get<std::string>()).is_object());
    EXPECT_EQ(call["type"], "function");
    const Json content = choice["message"]["content"];
    if (content.is_string()) {
      EXPECT_EQ(content.get<std::string>().find("<|tool_call>"), std::string::npos);
      EXPECT_EQ(content.get<std::string>().find("<tool_call|>"), std::string::npos);
    }
    expect_stream_matches(server.port(), request);
  }
}

TEST(ServerTools, NamedFunctionIsCalled) {
  TestServer server;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    Json request = user_chat("Time?", 16, seed);
    request["tools"] = Json::parse(kWeatherTools);
    request["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
    const HttpResult result = post_json(server.port(), "/v1/chat/completions", request);
    ASSERT_EQ(result.status, 200);
    const Json& message = result.body["choices"][0]["message"];
    ASSERT_TRUE(message.contains("tool_calls")) << message.dump();
    EXPECT_EQ(message["tool_calls"][0]["function"]["name"], "get_time");
  }
}

}  // namespace
}  // namespace mxgemma::test
