// processor_config.json / preprocessor_config.json parsing and the preprocessing options the
// goldens do not vary (normalization, no resize).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "media/image.h"
#include "media/image_processor.h"

namespace mxgemma {
namespace {

class ImageProcessorConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("mxgemma_media_config_" + std::to_string(::getpid()));
    std::filesystem::create_directories(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::filesystem::path write(const std::string& name, const std::string& text) {
    const std::filesystem::path path = directory_ / name;
    std::ofstream(path) << text;
    return path;
  }

  std::string load_error(const std::string& text) {
    try {
      load_image_processor_config(write("processor_config.json", text));
    } catch (const std::runtime_error& error) {
      return error.what();
    }
    return "";
  }

  std::filesystem::path directory_;
};

TEST_F(ImageProcessorConfigTest, NestedProcessorConfig) {
  const ImageProcessorConfig config = load_image_processor_config(write(
      "processor_config.json",
      R"({"processor_class": "Gemma4Processor", "image_seq_length": 280,
          "image_processor": {"image_processor_type": "Gemma4ImageProcessor", "patch_size": 16,
            "max_soft_tokens": 140, "pooling_kernel_size": 3, "do_resize": true,
            "do_rescale": true, "rescale_factor": 0.00392156862745098, "do_normalize": false,
            "resample": 3, "do_convert_rgb": true, "image_mean": [0.0, 0.0, 0.0],
            "image_std": [1.0, 1.0, 1.0]}})"));
  EXPECT_EQ(config.max_soft_tokens, 140);
  EXPECT_EQ(config.max_patches(), 1260);
  EXPECT_EQ(config.patch_size, 16);
  EXPECT_DOUBLE_EQ(config.rescale_factor, 1.0 / 255.0);
  EXPECT_FALSE(config.do_normalize);
}

TEST_F(ImageProcessorConfigTest, FlatPreprocessorConfig) {
  const ImageProcessorConfig config = load_image_processor_config(write(
      "preprocessor_config.json",
      R"({"image_processor_type": "Gemma4ImageProcessor", "max_soft_tokens": 560,
          "do_normalize": true, "image_mean": 0.5, "image_std": [0.5, 0.25, 1.0],
          "resample": "bicubic"})"));
  EXPECT_EQ(config.max_soft_tokens, 560);
  EXPECT_TRUE(config.do_normalize);
  EXPECT_FLOAT_EQ(config.image_mean[2], 0.5f);
  EXPECT_FLOAT_EQ(config.image_std[1], 0.25f);
}

TEST_F(ImageProcessorConfigTest, DefaultsWhenKeysAbsent) {
  const ImageProcessorConfig config = load_image_processor_config(write("p.json", "{}"));
  EXPECT_EQ(config.max_soft_tokens, 280);
  EXPECT_EQ(config.max_patches(), 2520);
  EXPECT_TRUE(config.do_rescale);
}

TEST_F(ImageProcessorConfigTest, RejectsBadValues) {
  std::string message = load_error(R"({"image_processor": {"max_soft_tokens": 100}})");
  EXPECT_NE(message.find("image_processor.max_soft_tokens"), std::string::npos) << message;
  EXPECT_NE(message.find("processor_config.json"), std::string::npos) << message;

  message = load_error(R"({"resample": 2})");
  EXPECT_NE(message.find("resample"), std::string::npos) << message;
  message = load_error(R"({"image_mean": [0.5, 0.5]})");
  EXPECT_NE(message.find("image_mean"), std::string::npos) << message;
  message = load_error(R"({"patch_size": "16"})");
  EXPECT_NE(message.find("patch_size"), std::string::npos) << message;
  message = load_error(R"({"image_processor": [1, 2]})");
  EXPECT_NE(message.find("image_processor"), std::string::npos) << message;
  EXPECT_NE(load_error("[1, 2]"), "");
  EXPECT_NE(load_error("{not json"), "");
}

DecodedImage uniform_image(int width, int height, uint8_t red, uint8_t green, uint8_t blue) {
  DecodedImage image;
  image.width = width;
  image.height = height;
  for (int i = 0; i < width * height; ++i) image.rgb.insert(image.rgb.end(), {red, green, blue});
  return image;
}

// A 768x768 image already has the target size at budget 280 (48 patches of 16 px a side). No
// resize runs, so the values are exact and the layout can be checked directly.
TEST(ImagePreprocess, TargetSizeSkipsResize) {
  ImageProcessorConfig config;
  DecodedImage image = uniform_image(768, 768, 10, 20, 30);
  image.rgb[0] = 255;  // red of pixel (0, 0): first value of patch 0
  const size_t last_pixel = (static_cast<size_t>(767) * 768 + 767) * 3;
  image.rgb[last_pixel + 2] = 0;  // blue of the bottom-right pixel: last value of patch 2303
  const PreprocessedImage result = preprocess_image(image, config);
  EXPECT_EQ(result.target_height, 768);
  EXPECT_EQ(result.num_patches, 48 * 48);
  EXPECT_EQ(result.num_soft_tokens, 256);
  EXPECT_FLOAT_EQ(result.pixel_values[0], 1.0f);
  EXPECT_FLOAT_EQ(result.pixel_values[1], static_cast<float>(20 / 255.0));
  EXPECT_FLOAT_EQ(result.pixel_values[2303 * 768 + 767], 0.0f);
  EXPECT_FLOAT_EQ(result.pixel_values[2303 * 768 + 766], static_cast<float>(20 / 255.0));
  // Patch 49 is row 1, column 1.
  EXPECT_EQ(result.positions[2 * 49], 1);
  EXPECT_EQ(result.positions[2 * 49 + 1], 1);
  EXPECT_EQ(result.positions[2 * 2304], -1);
  EXPECT_EQ(result.pixel_values[2304 * 768], 0.0f);
}

TEST(ImagePreprocess, NormalizationUsesMeanAndStd) {
  ImageProcessorConfig config;
  config.do_normalize = true;
  config.image_mean = {0.5f, 0.5f, 0.5f};
  config.image_std = {0.5f, 0.5f, 0.25f};
  const PreprocessedImage result = preprocess_image(uniform_image(768, 768, 255, 0, 255), config);
  EXPECT_FLOAT_EQ(result.pixel_values[0], 1.0f);
  EXPECT_FLOAT_EQ(result.pixel_values[1], -1.0f);
  EXPECT_FLOAT_EQ(result.pixel_values[2], 2.0f);
}

TEST(ImagePreprocess, WithoutResizeTooManyPatchesIsAnError) {
  ImageProcessorConfig config;
  config.do_resize = false;
  config.max_soft_tokens = 70;
  EXPECT_THROW(preprocess_image(uniform_image(1024, 1024, 1, 2, 3), config),
               std::invalid_argument);
}

}  // namespace
}  // namespace mxgemma
