// MediaEncoder on the tiny bundle: placeholder expansion, the checks made before any tower runs,
// and soft tokens split across prefill chunks. The tower outputs themselves are compared with
// mlx-vlm in tests/model/vision_parity_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "engine/media_prompt.h"
#include "kernels/thread_pool.h"
#include "model/gemma4_text.h"
#include "tests/model/parity_util.h"

namespace mxgemma {
namespace {

const std::filesystem::path kImages = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "images";

std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

MediaInput image_input(const std::string& file) {
  MediaInput input;
  input.kind = MediaInput::Kind::image;
  input.bytes = read_bytes(kImages / file);
  input.name = file;
  return input;
}

class MediaPromptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bundle_ = std::make_unique<Bundle>(Bundle::open(parity::bundle_dir("tiny-hf")));
    encoder_ = std::make_unique<MediaEncoder>(*bundle_, pool_);
    image_ = bundle_->config().image_token_id;
    audio_ = bundle_->config().audio_token_id;
  }

  ThreadPool pool_{2};
  std::unique_ptr<Bundle> bundle_;
  std::unique_ptr<MediaEncoder> encoder_;
  int32_t image_ = -1;
  int32_t audio_ = -1;
};

TEST_F(MediaPromptTest, ExpandsEachImagePlaceholderBetweenItsMarkers) {
  const std::vector<int32_t> prompt = {2, 10, image_, 11, image_, 12};
  const std::vector<MediaInput> media = {image_input("tiny.png"), image_input("alpha.png")};
  const MediaPrompt expanded = encoder_->expand(prompt, media, 4096);

  // tiny.png gives 60 soft tokens and alpha.png 63 with the tiny bundle's processor.
  const ModelConfig& config = bundle_->config();
  std::vector<int32_t> expected = {2, 10, config.boi_token_id};
  expected.insert(expected.end(), 60, image_);
  expected.insert(expected.end(), {config.eoi_token_id, 11, config.boi_token_id});
  expected.insert(expected.end(), 63, image_);
  expected.insert(expected.end(), {config.eoi_token_id, 12});
  EXPECT_EQ(expanded.tokens, expected);
  EXPECT_EQ(expanded.images, 2);
  const size_t hidden = size_t(config.text.hidden_size);
  EXPECT_EQ(expanded.image_rows.size(), 123 * hidden);
  const std::vector<Gemma4TextModel::SoftTokens> soft = expanded.soft_tokens();
  ASSERT_EQ(soft.size(), 1u);
  EXPECT_EQ(soft[0].token_id, image_);
  EXPECT_EQ(soft[0].rows.size(), 123 * hidden);
}

TEST_F(MediaPromptTest, ChunkedSoftTokensGiveTheSameLogitsAsOnePass) {
  const std::vector<int32_t> prompt = {2, 10, image_, 11, image_, 12};
  const std::vector<MediaInput> media = {image_input("tiny.png"), image_input("alpha.png")};
  const MediaPrompt expanded = encoder_->expand(prompt, media, 4096);
  Gemma4TextModel model(*bundle_, pool_);
  const int64_t total = int64_t(expanded.tokens.size());

  KVCache whole = model.make_cache(total, total);
  std::vector<float> reference;
  model.forward(expanded.tokens, whole, Gemma4TextModel::Logits::last, reference, expanded.soft_tokens());

  // Chunks of 50 cut both images, so each chunk needs its own slice of rows.
  KVCache chunked = model.make_cache(total, 50);
  std::vector<float> logits;
  for (int64_t begin = 0; begin < total; begin += 50) {
    const int64_t count = std::min<int64_t>(50, total - begin);
    const std::span<const int32_t> chunk(expanded.tokens.data() + begin, size_t(count));
    model.forward(chunk, chunked, Gemma4TextModel::Logits::last, logits, expanded.soft_tokens(begin, count));
  }
  ASSERT_EQ(logits.size(), reference.size());
  const parity::Comparison diff = parity::compare_rows(logits.data(), reference.data(), 1, int64_t(logits.size()));
  EXPECT_LT(diff.max_abs_diff, 1e-4);
}

TEST_F(MediaPromptTest, PlaceholderCountMustMatchTheInputs) {
  const std::vector<MediaInput> one = {image_input("tiny.png")};
  try {
    encoder_->expand(std::vector<int32_t>{2, image_, image_}, one, 4096);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "the prompt has 2 image placeholders (<|image|>) for 1 image");
  }
  EXPECT_THROW(encoder_->expand(std::vector<int32_t>{2, 10}, one, 4096), std::invalid_argument);
}

TEST_F(MediaPromptTest, TooManyImagesForTheContextFailBeforeTheTower) {
  const std::vector<int32_t> prompt = {2, image_, image_, image_};
  const std::vector<MediaInput> media = {image_input("tiny.png"), image_input("tiny.png"), image_input("tiny.png")};
  try {
    encoder_->expand(prompt, media, 150);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(),
                 "the prompt with 3 images and 0 audio clips is 187 tokens (180 of them soft tokens), which does not "
                 "fit the context size of 150 tokens; send fewer or smaller inputs or raise --ctx-size");
  }
}

TEST_F(MediaPromptTest, NotAnImageNamesTheInput) {
  MediaInput input;
  input.bytes = {'h', 'e', 'l', 'l', 'o'};
  input.name = "messages[0].content[1]";
  const std::vector<MediaInput> media = {input};
  try {
    encoder_->expand(std::vector<int32_t>{2, image_}, media, 4096);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("messages[0].content[1]"), std::string::npos) << error.what();
  }
}

TEST_F(MediaPromptTest, ExpandsAudioAfterAnImage) {
  MediaInput clip;
  clip.kind = MediaInput::Kind::audio;
  clip.bytes = read_bytes(std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "audio" / "tower_1s.wav");
  clip.name = "tower_1s.wav";
  const std::vector<MediaInput> media = {image_input("tiny.png"), clip};
  const MediaPrompt expanded = encoder_->expand(std::vector<int32_t>{2, image_, 10, audio_, 11}, media, 4096);

  const ModelConfig& config = bundle_->config();
  const int64_t audio_tokens = count_token(expanded.tokens, audio_);
  EXPECT_EQ(audio_tokens, 25);  // 1 s at 40 ms per token
  EXPECT_EQ(expanded.audio_clips, 1);
  // Each placeholder gives way to its begin marker, soft tokens and end marker.
  ASSERT_EQ(expanded.tokens.size(), size_t(3 + (60 + 2) + (audio_tokens + 2)));
  EXPECT_EQ(expanded.tokens[size_t(1 + 60 + 2)], 10);
  EXPECT_EQ(expanded.tokens[size_t(1 + 60 + 3)], config.boa_token_id);
  EXPECT_EQ(expanded.tokens[expanded.tokens.size() - 2], config.eoa_token_id);
  EXPECT_EQ(expanded.audio_rows.size(), size_t(audio_tokens * config.text.hidden_size));
  const std::vector<Gemma4TextModel::SoftTokens> soft = expanded.soft_tokens();
  ASSERT_EQ(soft.size(), 2u);
  EXPECT_EQ(soft[1].token_id, audio_);
  EXPECT_EQ(soft[1].rows.size(), expanded.audio_rows.size());
}

TEST_F(MediaPromptTest, AudioOverThirtySecondsIsRefusedNotTruncated) {
  MediaInput input;
  input.kind = MediaInput::Kind::audio;
  input.samples.assign(31 * 16000, 0.01f);
  input.name = "long.wav";
  const std::vector<MediaInput> media = {input};
  try {
    encoder_->expand(std::vector<int32_t>{2, audio_}, media, 4096);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(),
                 "long.wav: the clip is 31.0 s long; one audio input holds at most 30.0 s (750 soft tokens); split "
                 "it into shorter clips");
  }
}

TEST_F(MediaPromptTest, TowerErrorNamesTheClip) {
  MediaInput input;
  input.kind = MediaInput::Kind::audio;
  input.samples.assign(100, 0.1f);  // shorter than one 321-sample analysis window
  input.name = "short.wav";
  const std::vector<MediaInput> media = {input};
  try {
    encoder_->expand(std::vector<int32_t>{2, audio_}, media, 4096);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string(error.what()).rfind("short.wav: ", 0), 0u) << error.what();
  }
}

TEST(MediaPromptBundle, TextOnlyBundleRefusesImages) {
  ThreadPool pool(1);
  const Bundle bundle = Bundle::open(parity::bundle_dir("tiny-gemma3"));
  MediaEncoder encoder(bundle, pool);
  MediaInput input = image_input("tiny.png");
  const std::vector<MediaInput> media = {input};
  try {
    encoder.expand(std::vector<int32_t>{2, 10}, media, 4096);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "tiny.png: this bundle has no vision tower (config.json has no vision_config)");
  }
}

}  // namespace
}  // namespace mxgemma
