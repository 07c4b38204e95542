// Every rejected request gets OpenAI's error JSON with the right status, and the server still
// responds afterwards.
#include <string>

#include <gtest/gtest.h>

#include "server_test_util.h"

namespace mxgemma::test {
namespace {

Json chat_with(const Json& messages) { return {{"messages", messages}, {"max_tokens", 4}}; }

Json user_message(const Json& content) { return Json::array({{{"role", "user"}, {"content", content}}}); }

// Checks the status, the error object's fields and that /health still responds.
void expect_error(int port, const HttpResult& result, int status, const std::string& param, const std::string& message_part) {
  EXPECT_EQ(result.status, status) << result.body.dump();
  ASSERT_TRUE(result.body.is_object()) << "the error body is not JSON";
  ASSERT_TRUE(result.body.contains("error"));
  const Json& error = result.body["error"];
  EXPECT_TRUE(error["message"].is_string());
  EXPECT_TRUE(error["type"].is_string());
  EXPECT_TRUE(error.contains("code"));
  if (param.empty()) {
    EXPECT_TRUE(error["param"].is_null());
  } else {
    EXPECT_EQ(error["param"], param);
  }
  EXPECT_NE(error["message"].get<std::string>().find(message_part), std::string::npos) << error["message"];
  httplib::Client client("127.0.0.1", port);
  const auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(ServerErrors, InvalidJson) {
  TestServer server;
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", std::string("{\"messages\": [")), 400, "",
               "not valid JSON");
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", std::string("[1, 2]")), 400, "",
               "must be a JSON object");
}

TEST(ServerErrors, BodyOverLimit) {
  server::ServerOptions options = TestServer::default_options();
  options.max_body_bytes = 4096;
  TestServer server(options);
  const std::string big(8192, 'a');
  const HttpResult result = post_json(server.port(), "/v1/chat/completions", chat_with(user_message(big)));
  expect_error(server.port(), result, 413, "", "larger than");
  EXPECT_EQ(result.body["error"]["code"], "request_too_large");
}

// curl -d sends application/x-www-form-urlencoded, which cpp-httplib caps at 8 KiB.
TEST(ServerErrors, FormEncodedBodyOverEightKiB) {
  TestServer server;
  const std::string body = chat_with(user_message(std::string(9000, 'a'))).dump();
  httplib::Client client("127.0.0.1", server.port());
  const auto response = client.Post("/v1/chat/completions", body, "application/x-www-form-urlencoded");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413) << response->body;
  EXPECT_NE(response->body.find("Content-Type: application/json"), std::string::npos) << response->body;
}

// cpp-httplib reads a chunked body whole without its payload limit; the server checks it.
TEST(ServerErrors, ChunkedBodyOverLimit) {
  server::ServerOptions options = TestServer::default_options();
  options.max_body_bytes = 4096;
  TestServer server(options);
  const std::string body = chat_with(user_message(std::string(8192, 'a'))).dump();
  httplib::Client client("127.0.0.1", server.port());
  const auto response = client.Post(
      "/v1/chat/completions",
      [&](size_t, httplib::DataSink& sink) {
        sink.write(body.data(), body.size());
        sink.done();
        return true;
      },
      "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413) << response->body;
  EXPECT_NE(response->body.find("request_too_large"), std::string::npos) << response->body;
}

// Nesting deep enough to overflow a recursive walk is rejected before anything recurses.
TEST(ServerErrors, DeeplyNestedJson) {
  TestServer server;
  const int port = server.port();
  const int depth = 20000;
  std::string nested = std::string(depth, '[') + std::string(depth, ']');
  const std::string body = R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, )"
                           R"("chat_template_kwargs": {"deep": )" + nested + "}}";
  httplib::Client client("127.0.0.1", port);
  const auto response = client.Post("/v1/chat/completions", body, "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400) << response->body;
  EXPECT_NE(response->body.find("levels deep"), std::string::npos) << response->body;
  Json shallow = chat_with(user_message("hi"));
  shallow["chat_template_kwargs"] = {{"deep", Json::parse(std::string(20, '[') + std::string(20, ']'))}};
  EXPECT_EQ(post_json(port, "/v1/chat/completions", shallow).status, 200);
}

TEST(ServerErrors, MissingFields) {
  TestServer server;
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", Json{{"max_tokens", 4}}), 400, "messages", "missing");
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", chat_with(Json::array())), 400, "messages", "empty");
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", chat_with(Json::array({{{"content", "x"}}}))), 400,
               "messages[0].role", "missing");
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", chat_with(Json::array({{{"role", "user"}}}))), 400,
               "messages[0].content", "missing");
  expect_error(server.port(), post_json(server.port(), "/v1/completions", Json{{"max_tokens", 4}}), 400, "prompt", "missing");
  expect_error(server.port(), post_json(server.port(), "/tokenize", Json::object()), 400, "content", "missing");
}

TEST(ServerErrors, WrongTypedFields) {
  TestServer server;
  const int port = server.port();
  Json request = chat_with(user_message("hi"));
  const struct {
    const char* field;
    Json value;
  } cases[] = {
      {"temperature", "hot"}, {"top_p", true},        {"top_k", 1.5},        {"seed", "seven"},
      {"max_tokens", "10"},   {"stream", "yes"},      {"stop", 3},           {"messages", "hello"},
      {"tools", "none"},      {"min_p", Json::array()}, {"presence_penalty", "x"},
  };
  for (const auto& item : cases) {
    SCOPED_TRACE(item.field);
    Json bad = request;
    bad[item.field] = item.value;
    expect_error(port, post_json(port, "/v1/chat/completions", bad), 400, item.field, "expected");
  }
  Json content = request;
  content["messages"][0]["content"] = 42;
  expect_error(port, post_json(port, "/v1/chat/completions", content), 400, "messages[0].content", "expected");
}

TEST(ServerErrors, OutOfRangeValues) {
  TestServer server;
  const int port = server.port();
  Json request = chat_with(user_message("hi"));
  for (const auto& [field, value] : std::vector<std::pair<std::string, Json>>{
           {"temperature", -1}, {"top_p", 1.5}, {"max_tokens", 0}, {"frequency_penalty", 3}, {"top_k", -5}}) {
    SCOPED_TRACE(field);
    Json bad = request;
    bad[field] = value;
    expect_error(port, post_json(port, "/v1/chat/completions", bad), 400, field, "invalid " + field);
  }
}

TEST(ServerErrors, InvalidLogitBias) {
  TestServer server;
  const int port = server.port();
  for (const auto& [bias, param] : std::vector<std::pair<Json, std::string>>{
           {Json::array({1}), "logit_bias"},
           {Json({{"abc", 1}}), "logit_bias[\"abc\"]"},
           {Json({{"-3", 1}}), "logit_bias[\"-3\"]"},
           {Json({{"5", 101}}), "logit_bias[\"5\"]"},
           {Json({{"5", "x"}}), "logit_bias[\"5\"]"},
           {Json({{"100000", -100}}), "logit_bias"}}) {
    SCOPED_TRACE(bias.dump());
    Json bad = chat_with(user_message("hi"));
    bad["logit_bias"] = bias;
    expect_error(port, post_json(port, "/v1/chat/completions", bad), 400, param, "logit_bias");
  }
  Json good = chat_with(user_message("hi"));
  good["logit_bias"] = {{"1", -100}, {"300", 2.5}};
  EXPECT_EQ(post_json(port, "/v1/chat/completions", good).status, 200);
}

TEST(ServerErrors, UnknownRole) {
  TestServer server;
  const HttpResult result = post_json(server.port(), "/v1/chat/completions",
                                      chat_with(Json::array({{{"role", "wizard"}, {"content", "x"}}})));
  expect_error(server.port(), result, 400, "messages[0].role", "unknown role \"wizard\"");
}

TEST(ServerErrors, ToolSchemaNotObject) {
  TestServer server;
  Json request = chat_with(user_message("hi"));
  request["tools"] = Json::parse(R"([{"type": "function", "function": {"name": "f", "parameters": "a string"}}])");
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", request), 400, "tools[0].function.parameters",
               "JSON Schema object");
}

TEST(ServerErrors, ToolChoiceNamesUnknownTool) {
  TestServer server;
  Json request = chat_with(user_message("hi"));
  request["tools"] = Json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  request["tool_choice"] = {{"type", "function"}, {"function", {{"name", "g"}}}};
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", request), 400, "tool_choice", "no tool named");
  request.erase("tools");
  request["tool_choice"] = "required";
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", request), 400, "tool_choice", "needs a non-empty");
}

TEST(ServerErrors, WrongApiKey) {
  server::ServerOptions options = TestServer::default_options();
  options.api_key = "secret-key";
  TestServer server(options);
  const Json request = chat_with(user_message("hi"));
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", request, "wrong"), 401, "", "API key");
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", request), 401, "", "API key");
  const HttpResult models_without_key = [&] {
    httplib::Client client("127.0.0.1", server.port());
    const auto response = client.Get("/v1/models");
    return HttpResult{response ? response->status : 0, Json::parse(response ? response->body : "null"), ""};
  }();
  EXPECT_EQ(models_without_key.status, 401);
  EXPECT_EQ(post_json(server.port(), "/v1/chat/completions", request, "secret-key").status, 200);
  // The scheme name is case-insensitive; the key is not.
  httplib::Client client("127.0.0.1", server.port());
  for (const auto& [header, status] : std::vector<std::pair<std::string, int>>{
           {"bearer secret-key", 200}, {"BEARER secret-key", 200}, {"Bearer SECRET-KEY", 401}, {"Basic secret-key", 401}}) {
    const auto response = client.Post("/v1/chat/completions", {{"Authorization", header}}, request.dump(), "application/json");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, status) << header;
  }
}

TEST(ServerErrors, MoreThanOneChoice) {
  TestServer server;
  Json request = chat_with(user_message("hi"));
  request["n"] = 2;
  expect_error(server.port(), post_json(server.port(), "/v1/chat/completions", request), 400, "n", "only n = 1");
  request["n"] = 1;
  EXPECT_EQ(post_json(server.port(), "/v1/chat/completions", request).status, 200);
}

TEST(ServerErrors, PromptOverContext) {
  server::ServerOptions options = TestServer::default_options();
  options.scheduler.context_size = 64;
  TestServer server(options);
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "word ";
  const HttpResult result = post_json(server.port(), "/v1/chat/completions", chat_with(user_message(long_text)));
  expect_error(server.port(), result, 400, "messages", "the context holds 64 tokens");
  const std::string message = result.body["error"]["message"];
  EXPECT_NE(message.find("the prompt is "), std::string::npos);
  EXPECT_EQ(result.body["error"]["code"], "context_length_exceeded");

  const HttpResult completion = post_json(server.port(), "/v1/completions", Json{{"prompt", long_text}, {"max_tokens", 4}});
  expect_error(server.port(), completion, 400, "prompt", "the context holds 64 tokens");
}

TEST(ServerErrors, UnknownEndpoint) {
  TestServer server;
  expect_error(server.port(), post_json(server.port(), "/v1/embeddings", Json{{"input", "x"}}), 404, "", "unknown endpoint");
}

}  // namespace
}  // namespace mxgemma::test
