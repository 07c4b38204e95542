// The conversation logic of `mxgemma chat` with a scripted reply generator: tool calls printed and
// recorded, /tool-result answers folded into the next prompt as the bundle's template expects,
// reasoning kept apart, and the chat commands. The random-weight fixture never emits a tool call,
// so scripted model output is what reaches this path.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "engine/chat_session.h"
#include "engine/media_attachment.h"
#include "engine/media_prompt.h"
#include "kernels/thread_pool.h"
#include "text/tokenizer.h"

namespace mxgemma {
namespace {

using Json = nlohmann::ordered_json;

const std::filesystem::path kBundleDir = std::filesystem::path(MXGEMMA_FIXTURE_DIR) / "generated" / "tiny-hf";
const std::filesystem::path kData = MXGEMMA_TEST_DATA_DIR;

const Json kWeatherTools = Json::parse(R"([{"type": "function", "function": {"name": "get_weather",
  "description": "Current weather", "parameters": {"type": "object",
  "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
  {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}])");

class ChatSessionTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kBundleDir / "config.json")) {
      FAIL() << "fixture missing: " << kBundleDir << ": run scripts/make_fixtures.sh";
    }
    bundle_ = std::make_unique<Bundle>(Bundle::open(kBundleDir));
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_file(bundle_->tokenizer_json_path()));
  }

  // A session whose model "generates" the scripted replies in order, streamed in pieces of three
  // bytes so that markers arrive split across pieces.
  std::unique_ptr<ChatSession> make_session(Json tools = Json::array(), std::string system = "") {
    auto generate = [this](const MediaPrompt& prompt, int turn, const TextCallback& on_text) {
      if (replies_.empty()) throw std::runtime_error("the script has no reply left");
      prompts_.push_back(prompt.tokens);
      image_rows_.push_back(prompt.image_rows);
      soft_token_spans_.push_back(prompt.soft_tokens().size());
      turns_.push_back(turn);
      const std::string reply = replies_.front();
      replies_.pop_front();
      GenerationResult result;
      result.prompt_tokens = int64_t(prompt.tokens.size());
      result.finish_reason = FinishReason::stop_token;
      for (size_t i = 0; i < reply.size(); i += 3) {
        if (!on_text(reply.substr(i, 3))) break;
      }
      return result;
    };
    return std::make_unique<ChatSession>(*bundle_, *tokenizer_, select_chat_template(*bundle_, {}), generate,
                                         ChatStreams{out_, reasoning_, errors_}, std::move(system),
                                         /*enable_thinking=*/false, std::move(tools));
  }

  std::unique_ptr<Bundle> bundle_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::deque<std::string> replies_;
  std::vector<std::vector<int32_t>> prompts_;
  std::vector<std::vector<float>> image_rows_;
  std::vector<size_t> soft_token_spans_;
  std::vector<int> turns_;
  std::ostringstream out_, reasoning_, errors_;
};

TEST_F(ChatSessionTest, ToolCallIsPrintedAndItsResultContinuesTheTurn) {
  auto session = make_session(kWeatherTools);
  replies_ = {"<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|><|tool_response>",
              "It is 21 C in Paris.<turn|>"};

  ASSERT_TRUE(session->handle_line("What is the weather in Paris?"));
  EXPECT_EQ(out_.str(), "{\"tool_call\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}\n");
  EXPECT_NE(session->last_prompt().find("<|tool>declaration:get_weather{"), std::string::npos)
      << session->last_prompt();
  const Json& call_message = session->messages().back();
  EXPECT_EQ(call_message["role"], "assistant");
  EXPECT_EQ(call_message["tool_calls"][0]["id"], "call_0_0");
  EXPECT_EQ(call_message["tool_calls"][0]["function"]["arguments"], Json({{"city", "Paris"}}));

  // A user message while the call waits is rejected and changes nothing.
  ASSERT_TRUE(session->handle_line("Are you there?"));
  EXPECT_NE(errors_.str().find("waiting for tool results (get_weather)"), std::string::npos) << errors_.str();
  EXPECT_EQ(prompts_.size(), 1u);

  out_.str("");
  ASSERT_TRUE(session->handle_line("/tool-result get_weather {\"temp\": 21}"));
  ASSERT_EQ(prompts_.size(), 2u);
  EXPECT_EQ(out_.str(), "It is 21 C in Paris.\n");
  // The call and its result are in the model turn, as the bundle's (older) template renders tool
  // responses, and the prompt is what the generator received.
  const std::string& prompt = session->last_prompt();
  EXPECT_NE(prompt.find("<|turn>model\n<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|>"
                        "<|tool_response>response:get_weather{temp:21}<tool_response|>"),
            std::string::npos)
      << prompt;
  EXPECT_EQ(prompts_.back(), tokenizer_->encode(prompt, /*add_bos=*/false, /*parse_special=*/true));
  EXPECT_EQ(turns_, (std::vector<int>{0, 1}));

  const Json& messages = session->messages();
  ASSERT_EQ(messages.size(), 4u) << messages.dump();
  EXPECT_EQ(messages[2], Json({{"role", "tool"}, {"tool_call_id", "call_0_0"}, {"name", "get_weather"},
                               {"content", {{"temp", 21}}}}));
  EXPECT_EQ(messages[3]["content"], "It is 21 C in Paris.");
}

TEST_F(ChatSessionTest, SeveralCallsWaitForEveryResult) {
  auto session = make_session(kWeatherTools);
  replies_ = {"Let me check.<|tool_call>call:get_weather{city:<|\"|>Oslo<|\"|>}<tool_call|>"
              "<|tool_call>call:get_time{}<tool_call|><|tool_response>",
              "Done.<turn|>"};
  ASSERT_TRUE(session->handle_line("Weather and time in Oslo?"));
  EXPECT_EQ(out_.str(),
            "Let me check.\n"
            "{\"tool_call\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}}\n"
            "{\"tool_call\":{\"name\":\"get_time\",\"arguments\":{}}}\n");

  ASSERT_TRUE(session->handle_line("/tool-result get_nothing 1"));
  EXPECT_NE(errors_.str().find("no pending call named \"get_nothing\"; waiting for get_weather, get_time"),
            std::string::npos)
      << errors_.str();
  ASSERT_TRUE(session->handle_line("/tool-result get_time 12:00"));
  EXPECT_EQ(prompts_.size(), 1u) << "generated before every call had its result";
  ASSERT_TRUE(session->handle_line("/tool-result get_weather -3 C, snow"));
  ASSERT_EQ(prompts_.size(), 2u);
  EXPECT_EQ(session->messages()[2]["content"], "12:00");
  EXPECT_EQ(session->messages()[3]["content"], "-3 C, snow");
  EXPECT_EQ(session->messages()[3]["tool_call_id"], "call_0_0");

  ASSERT_TRUE(session->handle_line("/tool-result get_time 13:00"));
  EXPECT_NE(errors_.str().find("no tool call is waiting for a result"), std::string::npos) << errors_.str();
}

TEST_F(ChatSessionTest, ReasoningGoesToItsOwnStream) {
  auto session = make_session();
  replies_ = {"<|channel>thought\nThe user greets me.<channel|>Hello!<turn|>"};
  ASSERT_TRUE(session->handle_line("Hi"));
  EXPECT_EQ(reasoning_.str(), "The user greets me.\n");
  EXPECT_EQ(out_.str(), "Hello!\n");
  EXPECT_EQ(session->messages().back()["content"], "Hello!");
}

TEST_F(ChatSessionTest, TemplateKeywordsReachEveryPrompt) {
  auto session = make_session(kWeatherTools);
  replies_ = {"A.<turn|>", "B.<turn|>"};
  ASSERT_TRUE(session->handle_line("First"));
  EXPECT_EQ(session->last_prompt().find("Tool use is REQUIRED"), std::string::npos) << session->last_prompt();
  // The bundle's template carries the Osaurus stanza, shown only when tool_choice is "required".
  session->set_template_kwargs({{"tool_choice", "required"}, {"enable_thinking", true}});
  ASSERT_TRUE(session->handle_line("Second"));
  EXPECT_NE(session->last_prompt().find("Tool use is REQUIRED"), std::string::npos) << session->last_prompt();
  EXPECT_NE(session->last_prompt().find("<|think|>"), std::string::npos) << session->last_prompt();
}

TEST_F(ChatSessionTest, FailedTurnLeavesHistoryUnchanged) {
  auto session = make_session();
  // The script is empty, so the generator throws as it does for a prompt over the context.
  ASSERT_TRUE(session->handle_line("Hi"));
  EXPECT_NE(errors_.str().find("error: the script has no reply left"), std::string::npos) << errors_.str();
  EXPECT_TRUE(session->messages().empty());
}

TEST_F(ChatSessionTest, CommandsResetSetSystemAndExit) {
  auto session = make_session(Json::array(), "Be brief.");
  replies_ = {"One.<turn|>", "Two.<turn|>"};
  ASSERT_TRUE(session->handle_line("First"));
  EXPECT_NE(session->last_prompt().find("Be brief."), std::string::npos) << session->last_prompt();
  ASSERT_TRUE(session->handle_line("/system Be verbose."));
  EXPECT_TRUE(session->messages().empty());
  ASSERT_TRUE(session->handle_line("Second"));
  EXPECT_EQ(session->last_prompt().find("Be brief."), std::string::npos) << session->last_prompt();
  EXPECT_NE(session->last_prompt().find("Be verbose."), std::string::npos) << session->last_prompt();
  EXPECT_EQ(session->last_prompt().find("First"), std::string::npos) << session->last_prompt();
  ASSERT_TRUE(session->handle_line("/reset"));
  EXPECT_TRUE(session->messages().empty());
  ASSERT_TRUE(session->handle_line("/nonsense"));
  EXPECT_NE(errors_.str().find("unknown command /nonsense"), std::string::npos) << errors_.str();
  EXPECT_FALSE(session->handle_line("/exit"));
}

// The count of `token` in `tokens`.
size_t count_of(const std::vector<int32_t>& tokens, int32_t token) {
  return size_t(std::count(tokens.begin(), tokens.end(), token));
}

TEST_F(ChatSessionTest, ImageEncodedOnceForAllTurns) {
  ThreadPool pool(2);
  MediaEncoder encoder(*bundle_, pool);
  int encoder_calls = 0;
  auto session = make_session();
  session->set_media_encoder([&](const MediaInput& input) {
    ++encoder_calls;
    return encode_attachment(encoder, bundle_->config(), input, 4096);
  });
  replies_ = {"A cat.<turn|>", "Still a cat.<turn|>"};
  const std::string image = (kData / "images" / "tiny.png").string();

  ASSERT_TRUE(session->handle_line("/image " + image));
  ASSERT_EQ(session->pending_attachments().size(), 1u);
  EXPECT_EQ(session->pending_attachments()[0].soft_tokens, 60);
  ASSERT_TRUE(session->handle_line("What is this?"));
  ASSERT_TRUE(session->handle_line("And now?"));
  EXPECT_EQ(errors_.str(), "");
  EXPECT_TRUE(session->pending_attachments().empty());

  // Both turns carry the image's 60 soft tokens between its markers, from a single encoding.
  const ModelConfig& config = bundle_->config();
  ASSERT_EQ(prompts_.size(), 2u);
  for (size_t turn = 0; turn < 2; ++turn) {
    EXPECT_EQ(count_of(prompts_[turn], config.image_token_id), 60u) << "turn " << turn;
    EXPECT_EQ(count_of(prompts_[turn], config.boi_token_id), 1u) << "turn " << turn;
    EXPECT_EQ(count_of(prompts_[turn], config.eoi_token_id), 1u) << "turn " << turn;
    EXPECT_EQ(image_rows_[turn].size(), 60u * size_t(config.text.hidden_size)) << "turn " << turn;
    EXPECT_EQ(soft_token_spans_[turn], 1u) << "turn " << turn;
  }
  EXPECT_EQ(image_rows_[0], image_rows_[1]);
  EXPECT_EQ(encoder_calls, 1);

  const Json& content = session->messages()[0]["content"];
  ASSERT_TRUE(content.is_array()) << session->messages().dump();
  EXPECT_EQ(content, Json::parse(R"([{"type": "image", "path": ")" + image +
                                 R"("}, {"type": "text", "text": "What is this?"}])"));
  EXPECT_NE(session->last_prompt().find("<|turn>user\n\n\n<|image|>\n\nWhat is this?<turn|>"), std::string::npos)
      << session->last_prompt();
  EXPECT_EQ(session->messages()[2]["content"], "And now?");
}

// An encoder that runs no tower: an image becomes {boi, 2 x image, eoi} with rows of 1.0, an audio
// clip {boa, 3 x audio, eoa} with rows of 2.0.
MediaAttachment fake_attachment(const ModelConfig& config, const MediaInput& input) {
  const size_t hidden = size_t(config.text.hidden_size);
  MediaAttachment attachment;
  attachment.kind = input.kind;
  attachment.name = input.name;
  if (input.kind == MediaInput::Kind::image) {
    attachment.tokens = {config.boi_token_id, config.image_token_id, config.image_token_id, config.eoi_token_id};
    attachment.rows.assign(2 * hidden, 1.0f);
    attachment.soft_tokens = 2;
  } else {
    attachment.tokens = {config.boa_token_id, config.audio_token_id, config.audio_token_id, config.audio_token_id,
                         config.eoa_token_id};
    attachment.rows.assign(3 * hidden, 2.0f);
    attachment.soft_tokens = 3;
  }
  return attachment;
}

TEST_F(ChatSessionTest, MessageListsImagesThenAudioThenText) {
  auto session = make_session();
  const ModelConfig& config = bundle_->config();
  session->set_media_encoder([&](const MediaInput& input) { return fake_attachment(config, input); });
  replies_ = {"Heard and seen.<turn|>"};
  const std::string audio = (kData / "audio" / "tone_440.wav").string();
  const std::string image = (kData / "images" / "tiny.png").string();

  ASSERT_TRUE(session->handle_line("/audio " + audio));
  ASSERT_TRUE(session->handle_line("/image " + image));
  ASSERT_TRUE(session->handle_line("Describe both."));
  EXPECT_EQ(errors_.str(), "");

  const Json& content = session->messages()[0]["content"];
  ASSERT_EQ(content.size(), 3u) << content.dump();
  EXPECT_EQ(content[0], Json({{"type", "image"}, {"path", image}}));
  EXPECT_EQ(content[1], Json({{"type", "audio"}, {"path", audio}}));
  EXPECT_EQ(content[2], Json({{"type", "text"}, {"text", "Describe both."}}));
  EXPECT_NE(session->last_prompt().find("\n\n<|image|>\n\n<|audio|>Describe both."), std::string::npos)
      << session->last_prompt();

  // The spliced prompt has the image's tokens, then the clip's, in place of the placeholders.
  ASSERT_EQ(prompts_.size(), 1u);
  const std::vector<int32_t>& tokens = prompts_[0];
  const auto boi = std::find(tokens.begin(), tokens.end(), config.boi_token_id);
  const auto boa = std::find(tokens.begin(), tokens.end(), config.boa_token_id);
  ASSERT_NE(boi, tokens.end());
  ASSERT_NE(boa, tokens.end());
  EXPECT_LT(boi, boa);
  EXPECT_EQ(count_of(tokens, config.image_token_id), 2u);
  EXPECT_EQ(count_of(tokens, config.audio_token_id), 3u);
  EXPECT_EQ(soft_token_spans_[0], 2u);
}

TEST_F(ChatSessionTest, BadAttachmentIsReported) {
  ThreadPool pool(1);
  MediaEncoder encoder(*bundle_, pool);
  auto session = make_session();
  session->set_media_encoder(
      [&](const MediaInput& input) { return encode_attachment(encoder, bundle_->config(), input, 4096); });
  replies_ = {"Hello.<turn|>"};
  const std::string missing = (kData / "images" / "absent.png").string();
  const std::string not_image = (kData / "images" / "manifest.json").string();

  ASSERT_TRUE(session->handle_line("/image " + missing));
  ASSERT_TRUE(session->handle_line("/image " + not_image));
  ASSERT_TRUE(session->handle_line("/audio"));
  const std::string errors = errors_.str();
  EXPECT_NE(errors.find("error: image file " + missing + ": not found\n"), std::string::npos) << errors;
  EXPECT_NE(errors.find("error: image '" + not_image + "': not a supported image"), std::string::npos) << errors;
  EXPECT_NE(errors.find("error: /audio: missing file path; use /audio FILE\n"), std::string::npos) << errors;
  EXPECT_EQ(std::count(errors.begin(), errors.end(), '\n'), 3) << errors;
  EXPECT_TRUE(session->pending_attachments().empty());

  ASSERT_TRUE(session->handle_line("Hi"));
  ASSERT_EQ(prompts_.size(), 1u);
  EXPECT_EQ(count_of(prompts_[0], bundle_->config().boi_token_id), 0u);
  EXPECT_EQ(session->messages()[0]["content"], "Hi");
}

TEST_F(ChatSessionTest, FailedTurnDropsItsAttachments) {
  auto session = make_session();
  const ModelConfig& config = bundle_->config();
  session->set_media_encoder([&](const MediaInput& input) { return fake_attachment(config, input); });
  const std::string image = (kData / "images" / "tiny.png").string();

  // The script is empty, so the turn fails, and neither its text nor its image stays.
  ASSERT_TRUE(session->handle_line("/image " + image));
  ASSERT_TRUE(session->handle_line("Look."));
  EXPECT_NE(errors_.str().find("the script has no reply left"), std::string::npos) << errors_.str();
  EXPECT_TRUE(session->messages().empty());
  EXPECT_TRUE(session->pending_attachments().empty());

  replies_ = {"Plain.<turn|>"};
  ASSERT_TRUE(session->handle_line("Text only."));
  ASSERT_EQ(prompts_.size(), 1u);
  EXPECT_EQ(count_of(prompts_[0], config.image_token_id), 0u);
  EXPECT_TRUE(image_rows_[0].empty());

  ASSERT_TRUE(session->handle_line("/image " + image));
  ASSERT_EQ(session->pending_attachments().size(), 1u);
  ASSERT_TRUE(session->handle_line("/reset"));
  EXPECT_TRUE(session->pending_attachments().empty());
}

TEST_F(ChatSessionTest, MediaCommandsNeedAnEncoder) {
  auto session = make_session();
  ASSERT_TRUE(session->handle_line("/image " + (kData / "images" / "tiny.png").string()));
  EXPECT_NE(errors_.str().find("started without a media encoder"), std::string::npos) << errors_.str();
  EXPECT_TRUE(session->pending_attachments().empty());
}

TEST_F(ChatSessionTest, HelpListsTheCommands) {
  auto session = make_session();
  ASSERT_TRUE(session->handle_line("/help"));
  for (const char* command : {"/image FILE", "/audio FILE", "/reset", "/system TEXT", "/tool-result NAME RESULT", "/exit"}) {
    EXPECT_NE(errors_.str().find(command), std::string::npos) << command << " missing from " << errors_.str();
  }
  EXPECT_TRUE(prompts_.empty());
}

TEST(ReadToolsFile, RejectsMalformedFilesNamingTheField) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("mxgemma_tools_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::pair<const char*, const char*> cases[] = {
      {"{\"type\": \"function\"}", "tools: expected an array"},
      {"[{\"type\": \"function\"}]", "tools[0].function: missing"},
      {"[{\"type\": \"function\", \"function\": {\"name\": \"\"}}]", "tools[0].function.name"},
      {"[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": 3}}]",
       "tools[0].function.parameters: expected a JSON Schema object"},
      {"[1,", "invalid JSON"},
  };
  for (const auto& [text, expected] : cases) {
    const std::filesystem::path path = dir / "tools.json";
    std::ofstream(path) << text;
    try {
      read_tools_file(path.string());
      ADD_FAILURE() << "accepted " << text;
    } catch (const std::invalid_argument& error) {
      EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
    }
  }
  EXPECT_THROW(read_tools_file((dir / "absent.json").string()), std::invalid_argument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mxgemma
