// Attachments encoded one at a time and spliced into a prompt must give exactly what
// MediaEncoder::expand gives for the whole prompt, and reading a file must name it in errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "engine/media_attachment.h"
#include "engine/media_prompt.h"
#include "kernels/thread_pool.h"
#include "tests/model/parity_util.h"

namespace mxgemma {
namespace {

const std::filesystem::path kImages = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "images";

class MediaAttachmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bundle_ = std::make_unique<Bundle>(Bundle::open(parity::bundle_dir("tiny-hf")));
    encoder_ = std::make_unique<MediaEncoder>(*bundle_, pool_);
  }

  MediaAttachment attach(const std::string& file) {
    return encode_attachment(*encoder_, bundle_->config(), read_media_file((kImages / file).string(), MediaInput::Kind::image),
                             4096);
  }

  ThreadPool pool_{2};
  std::unique_ptr<Bundle> bundle_;
  std::unique_ptr<MediaEncoder> encoder_;
};

TEST_F(MediaAttachmentTest, SpliceEqualsExpandOfWholePrompt) {
  const int32_t image = bundle_->config().image_token_id;
  const std::vector<int32_t> prompt = {2, 10, image, 11, image, 12};
  const std::vector<MediaAttachment> media = {attach("tiny.png"), attach("alpha.png")};
  EXPECT_EQ(media[0].soft_tokens, 60);
  EXPECT_EQ(media[1].soft_tokens, 63);
  EXPECT_EQ(media[0].name, (kImages / "tiny.png").string());

  const MediaPrompt spliced = splice_attachments(prompt, media, bundle_->config());
  const std::vector<MediaInput> inputs = {read_media_file((kImages / "tiny.png").string(), MediaInput::Kind::image),
                                          read_media_file((kImages / "alpha.png").string(), MediaInput::Kind::image)};
  const MediaPrompt expanded = encoder_->expand(prompt, inputs, 4096);
  EXPECT_EQ(spliced.tokens, expanded.tokens);
  EXPECT_EQ(spliced.images, 2);
  EXPECT_EQ(spliced.audio_clips, 0);
  // The vision tower is deterministic, so the rows match bit for bit.
  EXPECT_EQ(spliced.image_rows, expanded.image_rows);
  ASSERT_EQ(spliced.soft_tokens().size(), 1u);
  EXPECT_EQ(spliced.soft_tokens()[0].rows.size(), expanded.soft_tokens()[0].rows.size());
}

TEST_F(MediaAttachmentTest, SpliceRejectsPlaceholderCountMismatch) {
  const int32_t image = bundle_->config().image_token_id;
  const std::vector<MediaAttachment> media = {attach("tiny.png")};
  try {
    splice_attachments(std::vector<int32_t>{2, image, 10, image}, media, bundle_->config());
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "the prompt has 2 image placeholders (<|image|>) for 1 image");
  }
  EXPECT_THROW(splice_attachments(std::vector<int32_t>{2, 10}, media, bundle_->config()), std::invalid_argument);
}

TEST_F(MediaAttachmentTest, AttachmentAloneOverContextIsRejected) {
  const MediaInput input = read_media_file((kImages / "tiny.png").string(), MediaInput::Kind::image);
  try {
    encode_attachment(*encoder_, bundle_->config(), input, 40);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("does not fit the context size of 40 tokens"), std::string::npos)
        << error.what();
  }
}

TEST(ReadMediaFile, NamesTheFileItCannotRead) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("mxgemma_media_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string missing = (dir / "absent.png").string();
  try {
    read_media_file(missing, MediaInput::Kind::image);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string(error.what()), "image file " + missing + ": not found");
  }
  try {
    read_media_file(dir.string(), MediaInput::Kind::audio);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string(error.what()), "audio file " + dir.string() + ": not a regular file");
  }

  const std::filesystem::path empty = dir / "empty.wav";
  std::ofstream(empty).close();
  const MediaInput input = read_media_file(empty.string(), MediaInput::Kind::audio);
  EXPECT_EQ(input.kind, MediaInput::Kind::audio);
  EXPECT_TRUE(input.bytes.empty());
  EXPECT_EQ(input.name, empty.string());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mxgemma
