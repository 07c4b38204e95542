// Decoding and preprocessing against the transformers Gemma4ImageProcessorPil arrays written by
// scripts/oracle/image_goldens.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "media/image.h"
#include "media/image_processor.h"
#include "util/npy.h"

namespace mxgemma {
namespace {

const std::filesystem::path kImageDir = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "images";

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream file(path);
  return nlohmann::json::parse(file);
}

NpyArray golden(const std::string& image_name, const std::string& array_name) {
  return read_npy(kImageDir / (image_name + "." + array_name + ".npy"));
}

// Largest |decoded - golden| over the 8-bit RGB samples, or -1 on a size mismatch.
int max_pixel_difference(const DecodedImage& image, const NpyArray& expected) {
  if (expected.shape != std::vector<int64_t>{image.height, image.width, 3}) return -1;
  int worst = 0;
  for (size_t i = 0; i < image.rgb.size(); ++i) {
    worst = std::max(worst, static_cast<int>(std::abs(image.rgb[i] - expected.data[i])));
  }
  return worst;
}

// Decoded pixels may differ from PIL's by this many 8-bit levels. PNG, GIF, BMP and lossless
// WebP are exact. The .venv Pillow bundles its own libjpeg-turbo and libwebp (1.6.0) builds
// while Debian 12 has libjpeg-turbo 2.1.5 and libwebp 1.2.4; with the same ISLOW IDCT, fancy
// upsampling and fixed-point YUV->RGB they agree exactly on these files, but other builds of
// the libraries (or arithmetic-coded JPEG) may round a level differently, so lossy formats get
// one level of slack.
int decode_tolerance(const std::string& name) {
  const bool lossy = name.ends_with(".jpg") || name == "lossy.webp";
  return lossy ? 1 : 0;
}

ImageProcessorConfig config_for(const nlohmann::json& entry) {
  ImageProcessorConfig config;
  config.max_soft_tokens = entry.at("max_soft_tokens").get<int>();
  return config;
}

// Checks `result` against the goldens of `name`. `tolerance` bounds |pixel value - golden| for
// the sampled rows, in units of the rescaled value (1/255 per 8-bit level).
void expect_matches_golden(const std::string& name, const nlohmann::json& entry,
                           const PreprocessedImage& result, double tolerance) {
  SCOPED_TRACE(name);
  EXPECT_EQ(result.target_height, entry.at("target_height").get<int>());
  EXPECT_EQ(result.target_width, entry.at("target_width").get<int>());
  EXPECT_EQ(result.num_patches, entry.at("num_patches").get<int>());
  EXPECT_EQ(result.num_soft_tokens, entry.at("num_soft_tokens").get<int>());
  ASSERT_EQ(result.patch_dim, 768);

  const NpyArray positions = golden(name, "positions");
  ASSERT_EQ(positions.shape, (std::vector<int64_t>{result.max_patches, 2}));
  for (size_t i = 0; i < result.positions.size(); ++i) {
    ASSERT_EQ(result.positions[i], static_cast<int32_t>(positions.data[i])) << "at " << i;
  }

  const NpyArray rows = golden(name, "rows");
  const auto row_indices = entry.at("rows").get<std::vector<int>>();
  ASSERT_EQ(rows.shape, (std::vector<int64_t>{static_cast<int64_t>(row_indices.size()), 768}));
  double worst = 0.0;
  for (size_t r = 0; r < row_indices.size(); ++r) {
    const float* actual = result.pixel_values.data() + static_cast<size_t>(row_indices[r]) * 768;
    for (int i = 0; i < 768; ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(actual[i]) - rows.data[r * 768 + i]));
    }
  }
  EXPECT_LE(worst, tolerance) << "sampled rows";

  // Sums over every row and column catch a wrong value anywhere, not only in the sampled rows.
  // A row sums 768 values, so the bound is 768 times the per-value one, plus float32 rounding
  // of the stored sums.
  const NpyArray row_sums = golden(name, "row_sums");
  ASSERT_EQ(row_sums.shape, (std::vector<int64_t>{result.max_patches}));
  double worst_row = 0.0;
  for (int r = 0; r < result.max_patches; ++r) {
    double sum = 0.0;
    for (int i = 0; i < 768; ++i) sum += result.pixel_values[static_cast<size_t>(r) * 768 + i];
    worst_row = std::max(worst_row, std::abs(sum - row_sums.data[r]));
  }
  EXPECT_LE(worst_row, 768 * tolerance + 1e-3) << "row sums";

  const NpyArray column_sums = golden(name, "column_sums");
  ASSERT_EQ(column_sums.shape, (std::vector<int64_t>{768}));
  double worst_column = 0.0;
  for (int i = 0; i < 768; ++i) {
    double sum = 0.0;
    for (int r = 0; r < result.max_patches; ++r) {
      sum += result.pixel_values[static_cast<size_t>(r) * 768 + i];
    }
    worst_column = std::max(worst_column, std::abs(sum - column_sums.data[i]));
  }
  EXPECT_LE(worst_column, result.num_patches * tolerance + 1e-2) << "column sums";
}

nlohmann::json golden_images() { return read_json(kImageDir / "manifest.json").at("images"); }

// Largest |sum - golden| over the decoded image's per-row sums and per-(column, channel) sums,
// the goldens kept for images too large to store whole; -1 on a size mismatch.
double max_sum_difference(const DecodedImage& image, const NpyArray& row_sums,
                          const NpyArray& column_sums) {
  if (row_sums.shape != std::vector<int64_t>{image.height} ||
      column_sums.shape != std::vector<int64_t>{image.width, 3}) {
    return -1.0;
  }
  std::vector<double> rows(image.height, 0.0);
  std::vector<double> columns(static_cast<size_t>(image.width) * 3, 0.0);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width * 3; ++x) {
      const uint8_t value = image.rgb[static_cast<size_t>(y) * image.width * 3 + x];
      rows[y] += value;
      columns[x] += value;
    }
  }
  double worst = 0.0;
  for (int y = 0; y < image.height; ++y) {
    worst = std::max(worst, std::abs(rows[y] - row_sums.data[y]));
  }
  for (size_t x = 0; x < columns.size(); ++x) {
    worst = std::max(worst, std::abs(columns[x] - column_sums.data[x]));
  }
  return worst;
}

TEST(ImageGolden, ManifestCoversRequiredKinds) {
  const nlohmann::json manifest = golden_images();
  for (const char* name : {"tiny.png", "very_wide.png", "very_tall.png", "gray.png",
                           "palette.png", "gray16.png", "rgb16.png", "cmyk.jpg", "alpha.png",
                           "exif_rotated.jpg", "anim.gif", "lossless.webp", "wide.bmp", "large.png",
                           "large.jpg", "horizontal_pass.png", "vertical_pass.png"}) {
    EXPECT_TRUE(manifest.contains(name)) << name;
  }
}

TEST(ImageGolden, DecodedPixelsMatchPil) {
  const nlohmann::json images = golden_images();
  for (const auto& [name, entry] : images.items()) {
    const DecodedImage image = decode_image_file(kImageDir / name);
    if (!entry.at("decoded_full").get<bool>()) {
      const double difference = max_sum_difference(image, golden(name, "decoded_row_sums"),
                                                    golden(name, "decoded_column_sums"));
      EXPECT_GE(difference, 0.0) << name << ": decoded size " << image.width << "x"
                                 << image.height;
      // A sum covers at most max(3 * width, height) samples, each within the tolerance.
      const int samples = std::max(3 * image.width, image.height);
      EXPECT_LE(difference, decode_tolerance(name) * samples) << name;
      continue;
    }
    const int difference = max_pixel_difference(image, golden(name, "decoded"));
    EXPECT_GE(difference, 0) << name << ": decoded size " << image.width << "x" << image.height;
    EXPECT_LE(difference, decode_tolerance(name)) << name;
  }
}

// Preprocessing the reference's own decoded pixels isolates the resize and patchify from the
// decoders: PIL's integer bicubic resize is reproduced bit for bit and the rescale is one
// float64 product cast to float32, so the only allowed difference is 0.
TEST(ImageGolden, PreprocessFromReferencePixelsIsExact) {
  const nlohmann::json images = golden_images();
  for (const auto& [name, entry] : images.items()) {
    if (!entry.at("decoded_full").get<bool>()) continue;
    const NpyArray decoded = golden(name, "decoded");
    DecodedImage image;
    image.height = static_cast<int>(decoded.shape.at(0));
    image.width = static_cast<int>(decoded.shape.at(1));
    image.rgb.assign(decoded.data.begin(), decoded.data.end());
    expect_matches_golden(name, entry, preprocess_image(image, config_for(entry)), 0.0);
  }
}

// From the file, decoding may add its tolerance in levels. The bicubic weights sum to 1 but have
// negative lobes: their absolute sum is at most 1.25 per pass (Keys' a = -0.5 kernel at offset
// 0.5). So one level of input difference moves an output by under 1.6 levels before rounding,
// and by at most 2 levels after both passes round.
TEST(ImageGolden, PreprocessFromFileWithinDecodeBound) {
  const nlohmann::json images = golden_images();
  for (const auto& [name, entry] : images.items()) {
    const PreprocessedImage result =
        preprocess_image(decode_image_file(kImageDir / name), config_for(entry));
    const double tolerance = decode_tolerance(name) * 2.0 / 255.0 + 1e-7;
    expect_matches_golden(name, entry, result, tolerance);
  }
}

TEST(ImageGolden, ExifOrientationsMatchPil) {
  const auto names = read_json(kImageDir / "manifest.json").at("orientation_images");
  ASSERT_EQ(names.size(), 7u);
  for (const auto& name : names) {
    const DecodedImage image = decode_image_file(kImageDir / name.get<std::string>());
    EXPECT_EQ(max_pixel_difference(image, golden(name, "decoded")), 0) << name;
  }
}

TEST(ImageGolden, SizeRuleMatchesReference) {
  const nlohmann::json cases = read_json(kImageDir / "size_rule.json");
  ASSERT_GT(cases.size(), 50u);
  for (const auto& entry : cases) {
    ImageProcessorConfig config;
    config.max_soft_tokens = entry.at("max_soft_tokens").get<int>();
    const int height = entry.at("height").get<int>();
    const int width = entry.at("width").get<int>();
    SCOPED_TRACE(std::to_string(height) + "x" + std::to_string(width) + " budget " +
                 std::to_string(config.max_soft_tokens));
    if (entry.contains("error")) {
      EXPECT_THROW(aspect_ratio_preserving_size(height, width, config), std::invalid_argument);
      continue;
    }
    const ImageTargetSize target = aspect_ratio_preserving_size(height, width, config);
    EXPECT_EQ(target.height, entry.at("target").at(0).get<int>());
    EXPECT_EQ(target.width, entry.at("target").at(1).get<int>());
  }
}

}  // namespace
}  // namespace mxgemma
