// Image and audio parts of /v1/chat/completions and /v1/audio/transcriptions against the tiny
// fixture model. The model is random, so outputs are checked against the library path
// (MediaEncoder + Generator, greedy) and against each other, not against meaningful text.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/chat_prompt.h"
#include "engine/generator.h"
#include "engine/media_prompt.h"
#include "media/audio_decode.h"
#include "server/job_response.h"
#include "server/media_parts.h"
#include "server/request.h"
#include "server/response.h"
#include "server_test_util.h"

namespace mxgemma::test {
namespace {

const std::filesystem::path kImages = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "images";
const std::filesystem::path kAudio = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "audio";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string base64(const std::string& bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string text;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t count = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t j = 0; j < 3; ++j) group = (group << 8) | (j < count ? uint8_t(bytes[i + j]) : 0u);
    for (size_t j = 0; j < 4; ++j) text += j <= count ? kAlphabet[(group >> (18 - 6 * j)) & 63] : '=';
  }
  return text;
}

std::string png_data_url(const std::string& file) { return "data:image/png;base64," + base64(read_file(kImages / file)); }

// A 16-bit mono PCM WAV file of a 440 Hz tone.
std::string tone_wav(double seconds, int rate = 16000) {
  const uint32_t frames = uint32_t(seconds * rate);
  std::string wav;
  auto put = [&](uint32_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) wav += char((value >> (8 * i)) & 0xff);
  };
  wav += "RIFF";
  put(36 + frames * 2, 4);
  wav += "WAVEfmt ";
  put(16, 4);
  put(1, 2);  // PCM
  put(1, 2);  // mono
  put(uint32_t(rate), 4);
  put(uint32_t(rate) * 2, 4);
  put(2, 2);
  put(16, 2);
  wav += "data";
  put(frames * 2, 4);
  for (uint32_t i = 0; i < frames; ++i) {
    put(uint32_t(uint16_t(int16_t(8000.0 * std::sin(2.0 * M_PI * 440.0 * i / rate)))), 2);
  }
  return wav;
}

Json image_part(const std::string& url) { return {{"type", "image_url"}, {"image_url", {{"url", url}}}}; }

Json audio_part(const std::string& data, const std::string& format) {
  return {{"type", "input_audio"}, {"input_audio", {{"data", data}, {"format", format}}}};
}

Json chat_with_parts(const Json& parts, int max_tokens = 6) {
  return {{"messages", Json::array({{{"role", "user"}, {"content", parts}}})}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

// Checks a 400 whose error names `param` and whose message contains `message_part`.
void expect_bad_part(const HttpResult& result, const std::string& param, const std::string& message_part) {
  EXPECT_EQ(result.status, 400) << result.body.dump();
  ASSERT_TRUE(result.body.contains("error")) << result.body.dump();
  EXPECT_EQ(result.body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(result.body["error"]["param"], param) << result.body.dump();
  const std::string message = result.body["error"]["message"];
  EXPECT_NE(message.find(message_part), std::string::npos) << message;
}

// The library path of one user turn: the same template, MediaEncoder and Generator, greedy,
// with the stop tokens the server uses. `parts` are template content parts ({"type": "text" |
// "image" | "audio"}) and `media` the inputs of its placeholders in order. Returns the message
// that the server's output mapping makes of the generated text, the text, and the token counts.
struct LibraryAnswer {
  Json message;
  std::string text;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

LibraryAnswer library_answer(const Json& parts, const std::vector<MediaInput>& media, int max_tokens, int64_t context_size) {
  TinyModel& tiny = tiny_model();
  const Json request = {{"messages", Json::array({{{"role", "user"}, {"content", parts}}})},
                        {"add_generation_prompt", true},
                        {"enable_thinking", false}};
  const SelectedChatTemplate chat_template = select_chat_template(*tiny.bundle, {});
  const std::string prompt_text =
      render_chat_template(chat_template, chat_template_context(request, "test", tiny.bundle->tokenizer_config()));
  const std::vector<int32_t> prompt = tiny.tokenizer->encode(prompt_text, /*add_bos=*/false, /*parse_special=*/true);

  ThreadPool pool(2);
  MediaEncoder encoder(*tiny.bundle, pool);
  const MediaPrompt expanded = encoder.expand(prompt, media, context_size);

  GenerationParams params;
  // max_tokens <= 0: the rest of the context, as the server's default.
  params.max_tokens = max_tokens > 0 ? max_tokens : int(context_size - int64_t(expanded.tokens.size()));
  params.sampling = sampling_defaults(tiny.bundle->generation_config());
  params.sampling.temperature = 0.0f;
  params.stop_token_ids = tiny.bundle->generation_config().eos_token_ids;
  for (const char* marker : {"<turn|>", "<|tool_response>"}) params.stop_token_ids.push_back(tiny.tokenizer->token_id(marker));
  // One prefill pass, so the server's chunks of 64 tokens are checked against an unchunked prompt.
  params.prefill_chunk = context_size;
  Generator generator(*tiny.model, *tiny.tokenizer);
  const GenerationResult result = generator.generate(expanded.tokens, params, context_size, nullptr, expanded.soft_tokens());

  server::ChatOutputAssembler assembler("call_");
  std::vector<Json> deltas;
  assembler.push(result.text, deltas);
  assembler.finish(deltas);
  return {assembler.message(), result.text, int64_t(expanded.tokens.size()), int64_t(result.tokens.size())};
}

// Posts `request` streamed with usage and assembles the deltas.
StreamedChat stream_chat(int port, Json request) {
  request["stream"] = true;
  request["stream_options"] = {{"include_usage", true}};
  const SseResult stream = post_sse(port, "/v1/chat/completions", request);
  EXPECT_EQ(stream.status, 200);
  EXPECT_TRUE(stream.done);
  return assemble_chat_stream(stream);
}

// The content of a message, "" when it is null.
std::string content_text(const Json& message) {
  return message["content"].is_string() ? message["content"].get<std::string>() : "";
}

// Checks a chat completion against the library path: status, content and prompt tokens.
void expect_library_answer(const HttpResult& result, const LibraryAnswer& expected) {
  ASSERT_EQ(result.status, 200) << result.body.dump();
  EXPECT_EQ(result.body["choices"][0]["message"]["content"], expected.message["content"]);
  EXPECT_EQ(result.body["usage"]["prompt_tokens"], expected.prompt_tokens);
}

MediaInput image_input(const std::string& file) {
  MediaInput input;
  const std::string bytes = read_file(kImages / file);
  input.bytes.assign(bytes.begin(), bytes.end());
  input.name = file;
  return input;
}

MediaInput audio_input(const std::string& wav) {
  MediaInput input;
  input.kind = MediaInput::Kind::audio;
  input.bytes.assign(wav.begin(), wav.end());
  input.name = "clip.wav";
  return input;
}

LibraryAnswer library_image_answer(const std::string& text, const std::vector<std::string>& images, int max_tokens,
                                   int64_t context_size) {
  Json parts = Json::array({{{"type", "text"}, {"text", text}}});
  std::vector<MediaInput> media;
  for (const std::string& file : images) {
    parts.push_back({{"type", "image"}});
    media.push_back(image_input(file));
  }
  return library_answer(parts, media, max_tokens, context_size);
}

TEST(ServerImages, DataUrlMatchesLibraryPath) {
  TestServer server;
  const LibraryAnswer expected = library_image_answer("What is in this picture?", {"tiny.png"}, 8, 1024);

  const Json request = chat_with_parts(
      Json::array({{{"type", "text"}, {"text", "What is in this picture?"}}, image_part(png_data_url("tiny.png"))}), 8);
  const HttpResult result = post_json(server.port(), "/v1/chat/completions", request);
  ASSERT_EQ(result.status, 200) << result.body.dump();
  const Json& message = result.body["choices"][0]["message"];
  EXPECT_EQ(message["content"], expected.message["content"]);
  EXPECT_EQ(message.value("reasoning_content", Json()), expected.message.value("reasoning_content", Json()));
  // tiny.png expands to 60 soft tokens between its two markers.
  EXPECT_EQ(result.body["usage"]["prompt_tokens"], expected.prompt_tokens);
  EXPECT_GT(expected.prompt_tokens, 62);
  EXPECT_EQ(result.body["usage"]["completion_tokens"], expected.completion_tokens);
}

TEST(ServerImages, TwoImagesCrossPrefillChunks) {
  // With prefill chunks of 64 tokens, both images (60 and 63 soft tokens) are cut between chunks.
  TestServer server;
  const LibraryAnswer expected = library_image_answer("Compare", {"tiny.png", "alpha.png"}, 6, 1024);
  const Json request = chat_with_parts(Json::array({{{"type", "text"}, {"text", "Compare"}},
                                                    image_part(png_data_url("tiny.png")),
                                                    image_part(png_data_url("alpha.png"))}));
  expect_library_answer(post_json(server.port(), "/v1/chat/completions", request), expected);
}

TEST(ServerImages, StreamEqualsNonStream) {
  TestServer server;
  Json request = chat_with_parts(Json::array({{{"type", "text"}, {"text", "Describe it"}}, image_part(png_data_url("alpha.png"))}), 10);
  const HttpResult whole = post_json(server.port(), "/v1/chat/completions", request);
  ASSERT_EQ(whole.status, 200) << whole.body.dump();

  const StreamedChat chat = stream_chat(server.port(), request);
  EXPECT_EQ(chat.content, content_text(whole.body["choices"][0]["message"]));
  EXPECT_EQ(chat.finish_reason, whole.body["choices"][0]["finish_reason"]);
  EXPECT_EQ(chat.usage["prompt_tokens"], whole.body["usage"]["prompt_tokens"]);
  EXPECT_EQ(chat.usage["completion_tokens"], whole.body["usage"]["completion_tokens"]);
}

TEST(ServerImages, ConcurrentRequestsEqualSequential) {
  // Image requests encode on their HTTP threads one at a time while text requests decode.
  TestServer server;
  std::vector<Json> requests;
  for (const char* file : {"tiny.png", "alpha.png", "gray.png", "palette.png"}) {
    requests.push_back(chat_with_parts(Json::array({{{"type", "text"}, {"text", "What?"}}, image_part(png_data_url(file))}), 8));
  }
  requests.push_back(chat_with_parts("Tell me a story", 12));
  requests.push_back(chat_with_parts("Another one", 12));

  std::vector<Json> sequential;
  for (const Json& request : requests) {
    const HttpResult result = post_json(server.port(), "/v1/chat/completions", request);
    ASSERT_EQ(result.status, 200) << result.body.dump();
    sequential.push_back(result.body);
  }
  std::vector<HttpResult> concurrent(requests.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < requests.size(); ++i) {
    clients.emplace_back([&, i] { concurrent[i] = post_json(server.port(), "/v1/chat/completions", requests[i]); });
  }
  for (std::thread& client : clients) client.join();
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_EQ(concurrent[i].status, 200) << i << ": " << concurrent[i].body.dump();
    EXPECT_EQ(concurrent[i].body["choices"][0]["message"], sequential[i]["choices"][0]["message"]) << i;
    EXPECT_EQ(concurrent[i].body["usage"], sequential[i]["usage"]) << i;
  }
}

TEST(ServerImages, BareStringUrlEqualsObjectForm) {
  TestServer server;
  const std::string url = png_data_url("tiny.png");
  const HttpResult object_form = post_json(server.port(), "/v1/chat/completions", chat_with_parts(Json::array({image_part(url)})));
  const HttpResult string_form = post_json(server.port(), "/v1/chat/completions",
                                           chat_with_parts(Json::array({{{"type", "image_url"}, {"image_url", url}}})));
  ASSERT_EQ(object_form.status, 200) << object_form.body.dump();
  ASSERT_EQ(string_form.status, 200) << string_form.body.dump();
  EXPECT_EQ(string_form.body["choices"][0]["message"], object_form.body["choices"][0]["message"]);
  EXPECT_EQ(string_form.body["usage"], object_form.body["usage"]);
}

TEST(ServerImages, BadImagePartsNameThePart) {
  server::ServerOptions options = TestServer::default_options();
  options.media_sources.max_bytes = 4096;
  TestServer server(options);
  const int port = server.port();
  auto post = [&](const Json& parts) { return post_json(port, "/v1/chat/completions", chat_with_parts(parts)); };
  const Json text = {{"type", "text"}, {"text", "Look"}};
  const std::string url_param = "messages[0].content[1].image_url.url";

  expect_bad_part(post(Json::array({text, image_part("data:image/png;base64,iVBO!!!")})), url_param, "invalid base64");
  expect_bad_part(post(Json::array({text, image_part("data:image/png;base64,QUJDR")})), url_param, "truncated");
  expect_bad_part(post(Json::array({text, image_part("data:text/plain;base64,aGVsbG8=")})), url_param,
                  "unsupported media type \"text/plain\"");
  expect_bad_part(post(Json::array({text, image_part("data:image/png,rawbytes")})), url_param, "must be base64-encoded");
  expect_bad_part(post(Json::array({text, image_part("data:image/png;base64,aGVsbG8gd29ybGQ=")})), url_param,
                  "not a supported image");
  expect_bad_part(post(Json::array({text, image_part("data:image/png;base64,")})), url_param, "empty");
  expect_bad_part(post(Json::array({text, image_part("ftp://example.invalid/a.png")})), url_param, "expected a data:image");
  // large.jpg is larger than the 4 KiB limit of this server.
  const std::string photo = "data:image/jpeg;base64," + base64(read_file(kImages / "large.jpg"));
  ASSERT_GT(read_file(kImages / "large.jpg").size(), 4096u);
  expect_bad_part(post(Json::array({text, image_part(photo)})), url_param, "larger than the limit");

  expect_bad_part(post(Json::array({text, {{"type", "image_url"}}})), "messages[0].content[1].image_url", "\"image_url\" is missing");
  expect_bad_part(post(Json::array({text, {{"type", "image_url"}, {"image_url", 7}}})), "messages[0].content[1].image_url",
                  "expected a string or an object");
  expect_bad_part(post(Json::array({text, {{"type", "video_url"}}})), "messages[0].content[1].type", "unknown content part type");

  const Json system_image = {{"messages", Json::array({{{"role", "system"}, {"content", Json::array({image_part(png_data_url("tiny.png"))})}},
                                                       {{"role", "user"}, {"content", "hi"}}})}};
  expect_bad_part(post_json(port, "/v1/chat/completions", system_image), "messages[0].content[0]", "only user messages");

  // Text parts alone are still joined into one string.
  const Json text_parts = Json::array({{{"type", "text"}, {"text", "Hello "}}, {{"type", "text"}, {"text", "there"}}});
  EXPECT_EQ(post(text_parts).status, 200);
}

TEST(ServerImages, TooManyImagesForTheContext) {
  server::ServerOptions options = TestServer::default_options();
  options.scheduler.context_size = 150;
  TestServer server(options);
  const std::string url = png_data_url("tiny.png");
  const HttpResult result = post_json(server.port(), "/v1/chat/completions",
                                      chat_with_parts(Json::array({image_part(url), image_part(url), image_part(url)})));
  expect_bad_part(result, "messages", "does not fit the context size of 150 tokens");
  EXPECT_EQ(result.body["error"]["code"], "context_length_exceeded");
  EXPECT_EQ(post_json(server.port(), "/v1/chat/completions", chat_with_parts(Json::array({image_part(url)}))).status, 200);
}

TEST(ServerImages, LocalFilesNeedTheFlag) {
  const std::string url = "file://" + (kImages / "tiny.png").string();
  const Json request = chat_with_parts(Json::array({image_part(url)}));
  {
    TestServer server;
    expect_bad_part(post_json(server.port(), "/v1/chat/completions", request), "messages[0].content[0].image_url.url",
                    "--allow-local-files");
  }
  server::ServerOptions options = TestServer::default_options();
  options.media_sources.allow_local_files = true;
  TestServer server(options);
  const HttpResult from_file = post_json(server.port(), "/v1/chat/completions", request);
  ASSERT_EQ(from_file.status, 200) << from_file.body.dump();
  const HttpResult from_data =
      post_json(server.port(), "/v1/chat/completions", chat_with_parts(Json::array({image_part(png_data_url("tiny.png"))})));
  ASSERT_EQ(from_data.status, 200);
  EXPECT_EQ(from_file.body["choices"][0]["message"], from_data.body["choices"][0]["message"]);

  // %20 decodes to a space; the file does not exist.
  expect_bad_part(post_json(server.port(), "/v1/chat/completions",
                            chat_with_parts(Json::array({image_part("file:///nonexistent%20dir/a.png")}))),
                  "messages[0].content[0].image_url.url", "/nonexistent dir/a.png is not a readable regular file");
  expect_bad_part(post_json(server.port(), "/v1/chat/completions", chat_with_parts(Json::array({image_part("file://relative.png")}))),
                  "messages[0].content[0].image_url.url", "absolute path");
  expect_bad_part(post_json(server.port(), "/v1/chat/completions",
                            chat_with_parts(Json::array({image_part("file://" + kImages.string())}))),
                  "messages[0].content[0].image_url.url", "not a readable regular file");
}

// An image host on 127.0.0.1 for the remote-URL tests.
class LoopbackImageHost {
 public:
  LoopbackImageHost() {
    const std::string png = read_file(kImages / "tiny.png");
    server_.Get("/tiny.png", [png](const httplib::Request&, httplib::Response& response) { response.set_content(png, "image/png"); });
    server_.Get("/big.png", [](const httplib::Request&, httplib::Response& response) {
      response.set_content(std::string(size_t(1) << 20, 'x'), "image/png");
    });
    server_.Get("/slow.png", [png](const httplib::Request&, httplib::Response& response) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      response.set_content(png, "image/png");
    });
    server_.Get("/moved.png", [](const httplib::Request&, httplib::Response& response) { response.set_redirect("/tiny.png"); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LoopbackImageHost() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

TEST(ServerImages, RemoteUrlsNeedTheFlag) {
  LoopbackImageHost host;
  const Json request = chat_with_parts(Json::array({image_part(host.url("/tiny.png"))}));
  const std::string param = "messages[0].content[0].image_url.url";
  {
    TestServer server;
    expect_bad_part(post_json(server.port(), "/v1/chat/completions", request), param, "--allow-remote-images");
  }
  server::ServerOptions options = TestServer::default_options();
  options.media_sources.allow_remote_images = true;
  options.media_sources.max_bytes = 512 << 10;
  options.media_sources.fetch_timeout_seconds = 0.5;
  TestServer server(options);
  const HttpResult fetched = post_json(server.port(), "/v1/chat/completions", request);
  ASSERT_EQ(fetched.status, 200) << fetched.body.dump();
  const HttpResult from_data =
      post_json(server.port(), "/v1/chat/completions", chat_with_parts(Json::array({image_part(png_data_url("tiny.png"))})));
  EXPECT_EQ(fetched.body["choices"][0]["message"], from_data.body["choices"][0]["message"]);
  const HttpResult redirected =
      post_json(server.port(), "/v1/chat/completions", chat_with_parts(Json::array({image_part(host.url("/moved.png"))})));
  EXPECT_EQ(redirected.status, 200) << redirected.body.dump();

  auto post_url = [&](const std::string& url) {
    return post_json(server.port(), "/v1/chat/completions", chat_with_parts(Json::array({image_part(url)})));
  };
  expect_bad_part(post_url(host.url("/missing.png")), param, "returned HTTP 404");
  expect_bad_part(post_url(host.url("/big.png")), param, "larger than the limit");
  expect_bad_part(post_url(host.url("/slow.png")), param, "fetching the image failed: reading the response failed or timed out after 0.5 s");
  // A port with no listener: the connection is refused at once.
  auto stopped_host = std::make_unique<LoopbackImageHost>();
  const std::string closed = stopped_host->url("/tiny.png");
  stopped_host.reset();
  expect_bad_part(post_url(closed), param, "fetching the image failed: cannot connect to the host");
}

// A multipart/form-data upload to /v1/audio/transcriptions.
HttpResult post_transcription(int port, const httplib::MultipartFormDataItems& items) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(120, 0);
  const httplib::Result response = client.Post("/v1/audio/transcriptions", items);
  HttpResult result;
  if (!response) return result;
  result.status = response->status;
  result.body = Json::parse(response->body, nullptr, false);
  if (result.body.is_discarded()) result.body = response->body;
  return result;
}

TEST(ServerMedia, BundleWithoutTowers) {
  // tiny-gemma3 is a text-only bundle: no vision_config, no audio_config.
  const std::filesystem::path dir = std::filesystem::path(MXGEMMA_FIXTURE_DIR) / "generated" / "tiny-gemma3";
  const Bundle bundle = Bundle::open(dir);
  const Tokenizer tokenizer = Tokenizer::from_file(bundle.tokenizer_json_path());
  ThreadPool pool(2);
  Gemma4TextModel model(bundle, pool);
  server::ServerOptions options = TestServer::default_options();
  options.host = "127.0.0.1";
  options.port = 0;
  server::Server server(bundle, tokenizer, model, options);
  const int port = server.start();

  expect_bad_part(post_json(port, "/v1/chat/completions", chat_with_parts(Json::array({image_part(png_data_url("tiny.png"))}))),
                  "messages[0].content[0].image_url.url", "no vision tower");
  expect_bad_part(post_json(port, "/v1/chat/completions", chat_with_parts(Json::array({audio_part(base64(tone_wav(1.0)), "wav")}))),
                  "messages[0].content[0].input_audio.data", "no audio tower");
  expect_bad_part(post_transcription(port, {{"file", tone_wav(1.0), "clip.wav", "audio/wav"}}), "file", "no audio tower");
  EXPECT_EQ(post_json(port, "/v1/chat/completions", chat_with_parts("hello")).status, 200);
  server.stop();
}

TEST(ServerAudio, BadAudioPartsNameThePart) {
  TestServer server;
  const int port = server.port();
  auto post = [&](const Json& part) {
    return post_json(port, "/v1/chat/completions", chat_with_parts(Json::array({{{"type", "text"}, {"text", "Listen"}}, part})));
  };
  const std::string data_param = "messages[0].content[1].input_audio.data";
  const std::string wav = base64(tone_wav(1.0));

  expect_bad_part(post(audio_part(wav, "ogg")), "messages[0].content[1].input_audio.format", "unsupported audio format \"ogg\"");
  expect_bad_part(post(audio_part("@@@@", "wav")), data_param, "invalid base64");
  expect_bad_part(post(audio_part(base64("not a sound file at all"), "wav")), data_param, "file");
  expect_bad_part(post(audio_part(base64(read_file(kAudio / "bad_nan.wav")), "wav")), data_param, "is not finite");
  expect_bad_part(post(audio_part("data:image/png;base64," + wav, "wav")), data_param, "expected audio/");
  expect_bad_part(post({{"type", "input_audio"}, {"input_audio", {{"format", "wav"}}}}), data_param, "is missing");
  expect_bad_part(post({{"type", "input_audio"}, {"input_audio", {{"data", wav}}}}), "messages[0].content[1].input_audio.format",
                  "is missing");
  // Over 30 s is rejected before the tower runs, not truncated.
  expect_bad_part(post(audio_part(base64(tone_wav(31.0)), "wav")), data_param, "the clip is 31.0 s long");
}

TEST(ServerAudio, AudioPartMatchesLibraryPath) {
  TestServer server;
  const std::string wav = tone_wav(2.0);
  const LibraryAnswer expected =
      library_answer(Json::array({{{"type", "audio"}}, {{"type", "text"}, {"text", "What do you hear?"}}}), {audio_input(wav)}, 8, 1024);

  Json request = chat_with_parts(Json::array({audio_part(base64(wav), "wav"), {{"type", "text"}, {"text", "What do you hear?"}}}), 8);
  const HttpResult result = post_json(server.port(), "/v1/chat/completions", request);
  ASSERT_EQ(result.status, 200) << result.body.dump();
  EXPECT_EQ(result.body["choices"][0]["message"]["content"], expected.message["content"]);
  // 2 s of audio is 50 soft tokens between the two markers.
  EXPECT_EQ(result.body["usage"]["prompt_tokens"], expected.prompt_tokens);
  EXPECT_GT(expected.prompt_tokens, 52);
  EXPECT_EQ(result.body["usage"]["completion_tokens"], expected.completion_tokens);

  // The same clip as a data URL, and streamed.
  request["messages"][0]["content"][0] = audio_part("data:audio/wav;base64," + base64(wav), "wav");
  const StreamedChat chat = stream_chat(server.port(), request);
  EXPECT_EQ(chat.content, content_text(expected.message));
  EXPECT_EQ(chat.usage["prompt_tokens"], expected.prompt_tokens);
}

TEST(ServerAudio, ImageAndAudioInOneMessage) {
  TestServer server;
  const std::string wav = tone_wav(1.0);
  const Json template_parts = Json::array({{{"type", "text"}, {"text", "Match them"}}, {{"type", "image"}}, {{"type", "audio"}}});
  const LibraryAnswer expected = library_answer(template_parts, {image_input("tiny.png"), audio_input(wav)}, 8, 1024);
  const Json request = chat_with_parts(
      Json::array({{{"type", "text"}, {"text", "Match them"}}, image_part(png_data_url("tiny.png")), audio_part(base64(wav), "wav")}), 8);
  expect_library_answer(post_json(server.port(), "/v1/chat/completions", request), expected);
}

TEST(ServerTranscription, BadUploadsNameTheField) {
  TestServer server;
  const int port = server.port();
  const std::string wav = tone_wav(1.0);
  auto with_file = [&](const std::string& content, httplib::MultipartFormDataItems extra = {}) {
    extra.push_back({"file", content, "clip.wav", "audio/wav"});
    return post_transcription(port, extra);
  };

  expect_bad_part(post_transcription(port, {{"model", "whisper-1", "", ""}}), "file", "\"file\" field is missing");
  expect_bad_part(with_file(""), "file", "empty");
  expect_bad_part(with_file(read_file(kAudio / "bad_not_audio.wav")), "file", "file: ");
  expect_bad_part(with_file(read_file(kAudio / "bad_empty.wav")), "file", "file: ");
  expect_bad_part(with_file(read_file(kAudio / "bad_nan.wav")), "file", "is not finite");
  expect_bad_part(with_file(read_file(kAudio / "bad_huge_header.wav")), "file", "file: ");
  expect_bad_part(with_file(wav, {{"response_format", "srt", "", ""}}), "response_format", "\"srt\" is not supported");
  expect_bad_part(with_file(wav, {{"language", "xx", "", ""}}), "language", "\"xx\" is not an ISO-639-1 code");
  expect_bad_part(with_file(wav, {{"temperature", "warm", "", ""}}), "temperature", "not a number in [0, 1]");

  const HttpResult json_body = post_json(port, "/v1/audio/transcriptions", Json{{"file", "abc"}});
  expect_bad_part(json_body, "file", "multipart/form-data");
}

// The transcription of a clip by the library path: Google's ASR instruction after each window,
// greedy, to the end of the context, the trimmed texts joined with one space.
std::string library_transcription(const std::string& wav, const std::string& instruction) {
  const DecodedAudio decoded = decode_audio_memory(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(wav.data()), wav.size()), "clip");
  const std::vector<float> samples = resample_audio(decoded.samples, decoded.sample_rate, 16000);
  std::string joined;
  for (const std::vector<float>& samples_of_window : server::split_audio_windows(samples, 480000)) {
    MediaInput window;
    window.kind = MediaInput::Kind::audio;
    window.samples = samples_of_window;
    const LibraryAnswer answer =
        library_answer(Json::array({{{"type", "audio"}}, {{"type", "text"}, {"text", instruction}}}), {window}, 0, 1024);
    const size_t first = answer.text.find_first_not_of(" \n\t\r");
    if (first == std::string::npos) continue;
    const size_t last = answer.text.find_last_not_of(" \n\t\r");
    if (!joined.empty()) joined += ' ';
    joined += answer.text.substr(first, last - first + 1);
  }
  return joined;
}

const char kFormattingRules[] =
    "\n\nFollow these specific instructions for formatting the answer:\n"
    "* Only output the transcription, with no newlines.\n"
    "* When transcribing numbers, write the digits, i.e. write 1.7 and not one point seven, and write 3 instead of three.";

TEST(ServerTranscription, MatchesLibraryPath) {
  TestServer server;
  const std::string wav = tone_wav(2.0);
  const std::string expected =
      library_transcription(wav, std::string("Transcribe the following speech segment in English into English text.") + kFormattingRules);
  const HttpResult result =
      post_transcription(server.port(), {{"file", wav, "clip.wav", "audio/wav"}, {"language", "en", "", ""}, {"model", "whisper-1", "", ""}});
  ASSERT_EQ(result.status, 200) << result.body.dump();
  EXPECT_EQ(result.body["text"], expected);

  // response_format text: the same text, as text/plain.
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(120, 0);
  const auto plain = client.Post("/v1/audio/transcriptions",
                                 httplib::MultipartFormDataItems{{"file", wav, "clip.wav", "audio/wav"},
                                                                 {"language", "en", "", ""},
                                                                 {"response_format", "text", "", ""}});
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);
  EXPECT_EQ(plain->get_header_value("Content-Type").rfind("text/plain", 0), 0u);
  EXPECT_EQ(plain->body, expected);
}

TEST(ServerTranscription, LongClipInThirtySecondWindows) {
  // 65 s: three windows of 21.7 s, each transcribed alone, without a language.
  TestServer server;
  const std::string wav = tone_wav(65.0);
  const std::string expected =
      library_transcription(wav, std::string("Transcribe the following speech segment in its original language.") + kFormattingRules);
  const HttpResult result = post_transcription(server.port(), {{"file", wav, "long.wav", "audio/wav"}});
  ASSERT_EQ(result.status, 200) << result.body.dump();
  EXPECT_EQ(result.body["text"], expected);
}

TEST(ServerTranscription, ShortClips) {
  // Clips too short for one frame of the audio tower get a 400 naming the file.
  TestServer server;
  for (const double seconds : {0.0005, 0.01}) {
    expect_bad_part(post_transcription(server.port(), {{"file", tone_wav(seconds), "short.wav", "audio/wav"}}), "file",
                    "too short for one audio token");
  }
  const HttpResult tenth = post_transcription(server.port(), {{"file", tone_wav(0.1), "short.wav", "audio/wav"}});
  EXPECT_EQ(tenth.status, 200) << tenth.body.dump();
  // A clip of 60 s and a few samples is split into three windows, none of them too short.
  const HttpResult sliver = post_transcription(server.port(), {{"file", tone_wav(60.001), "long.wav", "audio/wav"}});
  EXPECT_EQ(sliver.status, 200) << sliver.body.dump();
  // The same short clip as a chat part names the part.
  const HttpResult part = post_json(server.port(), "/v1/chat/completions",
                                    chat_with_parts(Json::array({audio_part(base64(tone_wav(0.0005)), "wav")})));
  expect_bad_part(part, "messages[0].content[0].input_audio.data", "too short for one audio token");
  httplib::Client client("127.0.0.1", server.port());
  EXPECT_EQ(client.Get("/health")->status, 200);
}

TEST(ServerTranscription, UploadOverMediaLimit) {
  server::ServerOptions options = TestServer::default_options();
  options.media_sources.max_bytes = 100000;
  TestServer server(options);
  const HttpResult result = post_transcription(server.port(), {{"file", tone_wav(5.0), "five.wav", "audio/wav"}});
  expect_bad_part(result, "file", "larger than the limit of 100000 bytes per file");
  EXPECT_EQ(result.body["error"]["code"], "file_too_large");
}

TEST(ServerMediaParts, SplitsAudioIntoWindows) {
  // 70 s at 16 kHz: three windows of 23.3 s, the first one sample longer.
  std::vector<float> samples(70 * 16000);
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = float(i);
  const auto windows = server::split_audio_windows(samples, 30 * 16000);
  ASSERT_EQ(windows.size(), 3u);
  EXPECT_EQ(windows[0].size(), 373334u);
  EXPECT_EQ(windows[1].size(), 373333u);
  EXPECT_EQ(windows[2].size(), 373333u);
  EXPECT_EQ(windows[1].front(), 373334.0f);
  EXPECT_EQ(windows[2].front(), 746667.0f);
  EXPECT_EQ(windows[2].back(), float(samples.size() - 1));

  // 60 s and one sample: three windows, not two of 30 s and a sliver of one sample.
  const auto sliver = server::split_audio_windows(std::vector<float>(960001), 480000);
  ASSERT_EQ(sliver.size(), 3u);
  EXPECT_EQ(sliver[2].size(), 320000u);
  EXPECT_EQ(server::split_audio_windows(std::vector<float>(480000), 480000).size(), 1u);
  EXPECT_TRUE(server::split_audio_windows({}, 480000).empty());
}

TEST(ServerMediaParts, DecodesBase64) {
  auto decode = [](const std::string& text) {
    const std::vector<uint8_t> bytes = server::decode_base64(text, "x");
    return std::string(bytes.begin(), bytes.end());
  };
  EXPECT_EQ(decode("aGVsbG8="), "hello");
  EXPECT_EQ(decode("aGVsbG8"), "hello");
  EXPECT_EQ(decode("aGVs\nbG8h"), "hello!");
  EXPECT_EQ(decode(""), "");
  const std::string binary("\x00\xff\x10\x80", 4);
  EXPECT_EQ(decode(base64(binary)), binary);
  EXPECT_THROW(decode("aGVs*G8="), server::ApiError);
  EXPECT_THROW(decode("aGVsb"), server::ApiError);
  EXPECT_THROW(decode("aG=Vs"), server::ApiError);
}

}  // namespace
}  // namespace mxgemma::test
