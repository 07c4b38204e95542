// Images and audio in `mxgemma run` and `mxgemma chat` on the tiny fixture bundle. Its weights are
// random, so a greedy reply is compared with the library path (chat template, MediaEncoder,
// Generator) on the same inputs, never with meaningful text. Each bad input must end the command
// with one error line naming the file, or, in a chat, be reported while the chat goes on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "engine/chat_prompt.h"
#include "engine/generator.h"
#include "engine/media_attachment.h"
#include "engine/media_prompt.h"
#include "kernels/thread_pool.h"
#include "model/gemma4_text.h"
#include "tests/cli/cli_runner.h"
#include "text/tokenizer.h"

namespace mxgemma {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using test::CommandResult;
using test::run_cli;
using test::scratch_dir;
using test::tiny_bundle;
using test::write_scratch;

const fs::path kData = MXGEMMA_TEST_DATA_DIR;
const int kMaxTokens = 12;

std::string image_path(const std::string& name) { return (kData / "images" / name).string(); }

std::string read_text(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
  return count;
}

// The greedy reply of the library path: the prompt text tokenized, its placeholders expanded by
// MediaEncoder, and Generator with run's defaults at temperature 0. Without `soft_tokens` the
// placeholders keep their plain token embeddings.
std::string library_reply(const std::string& prompt_text, bool add_bos, const std::vector<std::string>& images,
                          const std::vector<std::string>& audio_clips = {}, bool soft_tokens = true) {
  const Bundle bundle = Bundle::open(tiny_bundle());
  const Tokenizer tokenizer = Tokenizer::from_file(bundle.tokenizer_json_path());
  ThreadPool pool(1);
  Gemma4TextModel model(bundle, pool);
  MediaEncoder encoder(bundle, pool);

  std::vector<MediaInput> media;
  for (const std::string& path : images) media.push_back(read_media_file(path, MediaInput::Kind::image));
  for (const std::string& path : audio_clips) media.push_back(read_media_file(path, MediaInput::Kind::audio));
  const std::vector<int32_t> prompt = tokenizer.encode(prompt_text, add_bos, /*parse_special=*/true);
  const MediaPrompt expanded = encoder.expand(prompt, media, 4096);

  GenerationParams params;
  params.max_tokens = kMaxTokens;
  params.sampling = sampling_defaults(bundle.generation_config());
  params.sampling.temperature = 0.0f;
  params.stop_token_ids = bundle.generation_config().eos_token_ids;
  Generator generator(model, tokenizer);
  const auto ignore = [](const std::string&) { return true; };
  const std::vector<Gemma4TextModel::SoftTokens> soft =
      soft_tokens ? expanded.soft_tokens() : std::vector<Gemma4TextModel::SoftTokens>{};
  return generator.generate(expanded.tokens, params, 4096, ignore, soft).text;
}

// The prompt `mxgemma run` renders for one user message with `images`, then `audio_clips`, before
// its text.
std::string templated_prompt(const std::vector<std::string>& images, const std::string& text,
                             const std::vector<std::string>& audio_clips = {}) {
  const Bundle bundle = Bundle::open(tiny_bundle());
  Json parts = Json::array();
  for (size_t i = 0; i < images.size(); ++i) parts.push_back({{"type", "image"}});
  for (size_t i = 0; i < audio_clips.size(); ++i) parts.push_back({{"type", "audio"}});
  parts.push_back({{"type", "text"}, {"text", text}});
  const Json request = {{"messages", Json::array({Json{{"role", "user"}, {"content", parts}}})},
                        {"add_generation_prompt", true},
                        {"enable_thinking", false}};
  return render_chat_template(select_chat_template(bundle, {}),
                              chat_template_context(request, "prompt", bundle.tokenizer_config()));
}

CommandResult run_greedy(const std::string& arguments) {
  return run_cli("run -m " + tiny_bundle() + " --temperature 0 --max-tokens " + std::to_string(kMaxTokens) + " " +
                 arguments);
}

// Checks that the command failed with exit code 1 and one "mxgemma: error:" line containing
// each of `parts`, after at most the bundle's load line.
void expect_one_error(const CommandResult& result, const std::vector<std::string>& parts, const std::string& label) {
  EXPECT_EQ(result.exit_code, 1) << label << ": " << result.err;
  EXPECT_EQ(count_of(result.err, "mxgemma: error: "), 1u) << label << ": " << result.err;
  const size_t error_at = result.err.find("mxgemma: error: ");
  ASSERT_NE(error_at, std::string::npos) << label << ": " << result.err;
  const std::string error_line = result.err.substr(error_at);
  EXPECT_EQ(std::count(error_line.begin(), error_line.end(), '\n'), 1) << label << ": " << result.err;
  for (const std::string& part : parts) {
    EXPECT_NE(error_line.find(part), std::string::npos) << label << ": expected \"" << part << "\" in " << error_line;
  }
  EXPECT_TRUE(result.out.empty()) << label << ": " << result.out;
}

// A copy of wide.bmp whose header declares `width` pixels per row.
fs::path bmp_with_width(const std::string& name, int32_t width) {
  std::string bytes = read_text(kData / "images" / "wide.bmp");
  std::memcpy(bytes.data() + 18, &width, sizeof width);  // BITMAPINFOHEADER biWidth, little-endian
  return write_scratch(name, bytes);
}

// A scratch file `name` with the first half of `source`.
fs::path truncated_copy(const fs::path& source, const std::string& name) {
  const std::string bytes = read_text(source);
  return write_scratch(name, bytes.substr(0, bytes.size() / 2));
}

// A mono 16 kHz 16-bit PCM WAV file of `seconds` of a quiet constant signal.
fs::path wav_file(const std::string& name, int seconds) {
  const uint32_t samples = uint32_t(seconds) * 16000;
  const uint32_t data_bytes = samples * 2;
  std::string bytes;
  auto put = [&](uint32_t value, int size) {
    for (int i = 0; i < size; ++i) bytes.push_back(char((value >> (8 * i)) & 0xFF));
  };
  bytes += "RIFF";
  put(36 + data_bytes, 4);
  bytes += "WAVEfmt ";
  put(16, 4);
  put(1, 2);       // PCM
  put(1, 2);       // channels
  put(16000, 4);   // sample rate
  put(32000, 4);   // bytes per second
  put(2, 2);       // bytes per frame
  put(16, 2);      // bits per sample
  bytes += "data";
  put(data_bytes, 4);
  for (uint32_t i = 0; i < samples; ++i) put(300, 2);
  return write_scratch(name, bytes);
}

TEST(RunMedia, OneImageMatchesLibraryPath) {
  const std::string image = image_path("tiny.png");
  const CommandResult result = run_greedy("-p 'What is in the picture?' --image " + image);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string expected = library_reply(templated_prompt({image}, "What is in the picture?"), false, {image});
  EXPECT_EQ(result.out, expected + "\n");
  EXPECT_NE(result.err.find("encoded image " + image + " (60 soft tokens) in "), std::string::npos) << result.err;

  // The soft tokens change this reply, so the match above shows the image reached the decoder.
  EXPECT_NE(library_reply(templated_prompt({image}, "What is in the picture?"), false, {image}, {}, false), expected);
}

TEST(RunMedia, TwoImagesMatchLibraryPath) {
  const std::string first = image_path("tiny.png");
  const std::string second = image_path("alpha.png");
  const CommandResult result = run_greedy("-p 'Compare them.' --image " + first + " --image " + second);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, library_reply(templated_prompt({first, second}, "Compare them."), false, {first, second}) + "\n");
  EXPECT_NE(result.err.find("encoded image " + first + " (60 soft tokens), image " + second + " (63 soft tokens) in "),
            std::string::npos)
      << result.err;

  // The images go in the order of the flags.
  const CommandResult swapped = run_greedy("-p 'Compare them.' --image " + second + " --image " + first);
  ASSERT_EQ(swapped.exit_code, 0) << swapped.err;
  EXPECT_EQ(swapped.out, library_reply(templated_prompt({second, first}, "Compare them."), false, {second, first}) + "\n");
}

TEST(RunMedia, RawPromptCarriesItsPlaceholders) {
  const std::string first = image_path("tiny.png");
  const std::string second = image_path("alpha.png");
  const std::string prompt = "Left <|image|> right <|image|> which?";
  const CommandResult result = run_greedy("--raw -p '" + prompt + "' --image " + first + " --image " + second);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, library_reply(prompt, /*add_bos=*/true, {first, second}) + "\n");

  expect_one_error(run_greedy("--raw -p 'Left <|image|> which?' --image " + first + " --image " + second),
                   {"the prompt has 1 <|image|> and 0 <|audio|> placeholders for 2 --image and 0 --audio files",
                    "with --raw, write one <|image|> per --image"},
                   "one placeholder for two images");
}

TEST(RunMedia, TemplatedPlaceholderMismatchIsExplained) {
  const std::string first = image_path("tiny.png");
  const fs::path text_only_template = write_scratch(
      "text_only.jinja", "{% for message in messages %}{{ message['content'][-1]['text'] }}{% endfor %}");
  expect_one_error(run_greedy("-p hi --chat-template " + text_only_template.string() + " --image " + first),
                   {"the prompt has 0 <|image|>", "does not render {\"type\": \"image\"}", "or --raw"},
                   "template without image parts");
  expect_one_error(run_greedy("-p 'This <|image|> here' --image " + first),
                   {"the prompt has 2 <|image|>", "must not contain <|image|> or <|audio|> itself"},
                   "placeholder typed into a templated prompt");
}

TEST(RunMedia, BadImagesAreOneLineErrors) {
  const fs::path missing = scratch_dir() / "absent.png";
  const fs::path not_image = write_scratch("notes.png", "just some text, not pixels");
  const fs::path truncated_jpeg = truncated_copy(kData / "images" / "photo.jpg", "half.jpg");
  const fs::path truncated_png = truncated_copy(kData / "images" / "alpha.png", "half.png");
  const fs::path zero_wide = bmp_with_width("zero.bmp", 0);
  const fs::path huge_wide = bmp_with_width("huge.bmp", 100000);
  const struct {
    fs::path file;
    std::string problem;
  } cases[] = {
      {missing, "image file " + missing.string() + ": not found"},
      {scratch_dir(), "not a regular file"},
      {not_image, "not a supported image"},
      {truncated_jpeg, truncated_jpeg.string()},
      {truncated_png, truncated_png.string()},
      {zero_wide, "invalid size 0x12 (a side is 0)"},
      {huge_wide, "size 100000x12 exceeds the maximum side of 32768 pixels"},
  };
  for (const auto& test_case : cases) {
    expect_one_error(run_greedy("-p hi --image " + test_case.file.string()), {test_case.file.string(), test_case.problem},
                     test_case.file.string());
  }
}

TEST(RunMedia, TooManyImagesForContext) {
  const std::string image = image_path("tiny.png");
  expect_one_error(run_greedy("-p hi --ctx-size 150 --image " + image + " --image " + image + " --image " + image),
                   {"the prompt with 3 images and 0 audio clips is", "does not fit the context size of 150 tokens",
                    "raise --ctx-size"},
                   "three images in 150 tokens");
}

TEST(RunMedia, BundleWithoutVisionTowerRejectsImages) {
  const std::string image = image_path("tiny.png");
  const std::string gemma3 = (fs::path(MXGEMMA_FIXTURE_DIR) / "generated" / "tiny-gemma3").string();
  const CommandResult result = run_cli("run -m " + gemma3 + " -p hi --image " + image);
  expect_one_error(result, {image + ": this bundle has no vision tower"}, "tiny-gemma3");

  // The real Gemma 3 270M bundle is text only as well.
  const fs::path real = fs::path(MXGEMMA_FIXTURE_DIR).parent_path() / "models" / "gemma3-270m";
  ASSERT_TRUE(fs::exists(real / "config.json")) << real << " is missing: run scripts/fetch_real_model.sh";
  expect_one_error(run_cli("run -m " + real.string() + " -p hi --image " + image),
                   {image + ": this bundle has no vision tower"}, "gemma3-270m");
}

TEST(RunMedia, BadAudioIsOneLineError) {
  const fs::path long_clip = wav_file("long.wav", 31);
  const fs::path not_audio = write_scratch("notes.wav", "just some text, not samples");
  const fs::path missing = scratch_dir() / "absent.wav";
  const std::string truncated = (kData / "audio" / "bad_truncated.wav").string();
  const struct {
    std::string file;
    std::string problem;
  } cases[] = {
      {long_clip.string(), "the clip is 31.0 s long; one audio input holds at most 30.0 s"},
      {not_audio.string(), "audio file " + not_audio.string()},
      {missing.string(), "audio file " + missing.string() + ": not found"},
      {truncated, "truncated"},
  };
  for (const auto& test_case : cases) {
    expect_one_error(run_greedy("-p hi --audio " + test_case.file), {test_case.file, test_case.problem}, test_case.file);
  }

  const std::string gemma3 = (fs::path(MXGEMMA_FIXTURE_DIR) / "generated" / "tiny-gemma3").string();
  const std::string clip = (kData / "audio" / "tone_440.wav").string();
  expect_one_error(run_cli("run -m " + gemma3 + " -p hi --audio " + clip), {clip + ": this bundle has no audio tower"},
                   "tiny-gemma3");
}

TEST(RunMedia, AudioMatchesLibraryPath) {
  const std::string clip = (kData / "audio" / "speech_like.wav").string();
  const std::string image = image_path("tiny.png");
  const std::string text = "What do you hear and see?";
  const CommandResult result = run_greedy("-p '" + text + "' --image " + image + " --audio " + clip);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string expected = library_reply(templated_prompt({image}, text, {clip}), false, {image}, {clip});
  EXPECT_EQ(result.out, expected + "\n");
  EXPECT_NE(result.err.find("encoded image " + image + " (60 soft tokens), audio " + clip + " (50 soft tokens) in "),
            std::string::npos)
      << result.err;

  // The soft tokens change this reply, so the match above shows the clip reached the decoder.
  EXPECT_NE(library_reply(templated_prompt({image}, text, {clip}), false, {image}, {clip}, false), expected);
}

TEST(RunMedia, TwoAudioClipsMatchLibraryPath) {
  const std::string first = (kData / "audio" / "speech_like.wav").string();
  const std::string second = (kData / "audio" / "format_mp3.mp3").string();
  const std::string prompt = "<|audio|> then <|audio|>: same speaker?";
  const CommandResult result = run_greedy("--raw -p '" + prompt + "' --audio " + first + " --audio " + second);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, library_reply(prompt, /*add_bos=*/true, {}, {first, second}) + "\n");

  expect_one_error(run_greedy("--raw -p '<|audio|> only one' --audio " + first + " --audio " + second),
                   {"the prompt has 0 <|image|> and 1 <|audio|> placeholders for 0 --image and 2 --audio files"},
                   "one placeholder for two clips");
}

TEST(RunMedia, AudioFollowsImagesInPrompt) {
  const std::string clip = (kData / "audio" / "tone_440.wav").string();
  const std::string image = image_path("tiny.png");
  // The flags' order does not matter: the message lists its images, then its audio, then its text.
  const CommandResult result = run_greedy("--verbose -p 'Describe both.' --audio " + clip + " --image " + image);
  EXPECT_NE(result.err.find("<|turn>user\n\n\n<|image|>\n\n<|audio|>Describe both.<turn|>"), std::string::npos)
      << result.err;
}

// Runs `mxgemma chat` on the tiny bundle, greedy and short, with `stdin_text` piped in.
CommandResult run_chat(const std::string& arguments, const std::string& stdin_text) {
  return run_cli("chat -m " + tiny_bundle() + " --temperature 0 --max-tokens 6 " + arguments, stdin_text);
}

TEST(ChatMedia, ImageFlagStaysInLaterTurns) {
  const std::string image = image_path("tiny.png");
  const CommandResult result = run_chat("--verbose --image " + image, "what is this\nand now\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(count_of(result.err, "time to first token"), 2u) << result.err;
  // Encoded once, then re-rendered into both prompts.
  EXPECT_EQ(count_of(result.err, "image " + image + ": 60 soft tokens, encoded in"), 1u) << result.err;
  EXPECT_EQ(count_of(result.err, "<|image|>"), 2u) << result.err;
  EXPECT_NE(result.err.find("<|image|>\n\nwhat is this<turn|>"), std::string::npos) << result.err;
}

TEST(ChatMedia, ImageCommandAttachesToNextMessage) {
  const std::string image = image_path("alpha.png");
  const CommandResult result = run_chat("--verbose", "hello\n/image " + image + "\nlook at this\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(count_of(result.err, "time to first token"), 2u) << result.err;
  EXPECT_EQ(count_of(result.err, "image " + image + ": 63 soft tokens"), 1u) << result.err;
  const size_t second_prompt = result.err.rfind("prompt (");
  ASSERT_NE(second_prompt, std::string::npos) << result.err;
  EXPECT_NE(result.err.find("<|image|>\n\nlook at this", second_prompt), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("<|image|>"), result.err.find("<|image|>", second_prompt)) << "the first turn had no image";
}

TEST(ChatMedia, BadImageCommandKeepsChatRunning) {
  const fs::path missing = scratch_dir() / "absent.png";
  const fs::path not_image = write_scratch("chat_notes.png", "not pixels");
  const CommandResult result =
      run_chat("", "/image " + missing.string() + "\n/image " + not_image.string() + "\n/audio\nhello\n/help\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("error: image file " + missing.string() + ": not found\n"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("error: image '" + not_image.string() + "': not a supported image"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("error: /audio: missing file path"), std::string::npos) << result.err;
  EXPECT_EQ(count_of(result.err, "time to first token"), 1u) << result.err;
  EXPECT_NE(result.err.find("/image FILE"), std::string::npos) << "help text: " << result.err;
}

TEST(ChatMedia, AudioCommandStaysInLaterTurns) {
  const std::string clip = (kData / "audio" / "speech_like.wav").string();
  const CommandResult result = run_chat("--verbose", "/audio " + clip + "\nwhat is this\nand now\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(count_of(result.err, "time to first token"), 2u) << result.err;
  EXPECT_EQ(count_of(result.err, "audio " + clip + ": 50 soft tokens, encoded in"), 1u) << result.err;
  EXPECT_EQ(count_of(result.err, "<|turn>user\n<|audio|>what is this<turn|>"), 2u) << result.err;
}

TEST(ChatMedia, TextOnlyBundleReportsImageCommand) {
  const std::string gemma3 = (fs::path(MXGEMMA_FIXTURE_DIR) / "generated" / "tiny-gemma3").string();
  const std::string image = image_path("tiny.png");
  const CommandResult result =
      run_cli("chat -m " + gemma3 + " --temperature 0 --max-tokens 4", "/image " + image + "\nhello\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("error: " + image + ": this bundle has no vision tower"), std::string::npos) << result.err;
  EXPECT_EQ(count_of(result.err, "time to first token"), 1u) << result.err;
}

TEST(ChatMedia, BadImageFlagEndsTheCommand) {
  const fs::path missing = scratch_dir() / "absent.png";
  expect_one_error(run_chat("--image " + missing.string(), "hello\n"), {"image file " + missing.string() + ": not found"},
                   "missing --image");
  const fs::path long_clip = wav_file("chat_long.wav", 31);
  expect_one_error(run_chat("--audio " + long_clip.string(), "hello\n"), {long_clip.string(), "31.0 s long"},
                   "--audio over 30 s");
}

}  // namespace
}  // namespace mxgemma
