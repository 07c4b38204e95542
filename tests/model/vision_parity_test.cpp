// The Gemma 4 vision tower, the image embedder and the decoder with image soft tokens against
// mlx-vlm (goldens recorded by scripts/oracle/record_vision_goldens.py on MLX's CPU backend with
// fp32 parameters). The images go through our own decoder and image processor, which match
// transformers' processor that the oracle uses.
//
// Bounds are those of the text path (text_parity_test.cpp). The f32 reference differs from us
// only by summation order, so 2e-3 max abs and cosine 0.99999 still fail on any real defect: a
// wrong RoPE half, pooling cell or norm moves values by 0.1 or more.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "kernels/thread_pool.h"
#include "media/image.h"
#include "media/image_processor.h"
#include "model/gemma4_text.h"
#include "model/gemma4_vision.h"
#include "tests/model/parity_util.h"
#include "util/npy.h"

namespace mxgemma {
namespace {

constexpr double kF32MinCosine = 0.99999;
constexpr double kF32MaxAbsDiff = 2e-3;

using parity::bundle_dir;
using parity::compare_rows;
using parity::Comparison;
using parity::kFixtures;
const std::filesystem::path kImages = std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "images";

nlohmann::json vision_manifest() {
  return parity::read_golden_manifest("vision_manifest.json", "scripts/oracle/record_vision_goldens.py");
}

class VisionParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    bundle_ = std::make_unique<Bundle>(Bundle::open(bundle_dir(GetParam())));
    vision_ = std::make_unique<Gemma4VisionModel>(*bundle_, pool_);
    text_ = std::make_unique<Gemma4TextModel>(*bundle_, pool_);
    processor_ = load_image_processor_config(bundle_->dir() / "processor_config.json");
  }

  PreprocessedImage preprocess(const std::string& name) const {
    return preprocess_image(decode_image_file(kImages / name), processor_);
  }

  // Soft tokens of the named images, concatenated in order.
  std::vector<float> soft_tokens_of(const std::vector<std::string>& names, std::vector<int>& counts) {
    std::vector<float> rows;
    for (const std::string& name : names) {
      const PreprocessedImage image = preprocess(name);
      const std::vector<float> soft = vision_->encode_image(image.pixel_values, image.positions);
      counts.push_back(int(soft.size() / size_t(vision_->text_hidden_size())));
      rows.insert(rows.end(), soft.begin(), soft.end());
    }
    return rows;
  }

  std::vector<float> logits_of(const std::vector<int32_t>& ids, std::span<const float> soft, int64_t chunk) {
    KVCache cache = text_->make_cache(int64_t(ids.size()), chunk);
    std::vector<float> logits;
    text_->forward(ids, cache, Gemma4TextModel::Logits::all, logits,
                   {bundle_->config().image_token_id, soft});
    return logits;
  }

  std::filesystem::path golden(const std::string& suffix) const {
    return kFixtures / "goldens" / (GetParam() + ".vision." + suffix + ".npy");
  }

  ThreadPool pool_{2};
  std::unique_ptr<Bundle> bundle_;
  std::unique_ptr<Gemma4VisionModel> vision_;
  std::unique_ptr<Gemma4TextModel> text_;
  ImageProcessorConfig processor_;
};

TEST_P(VisionParity, TowerAndEmbedderMatchReference) {
  const PreprocessedImage image = preprocess("tiny.png");
  const std::vector<float> tower = vision_->encode_patches(image.pixel_values, image.positions);
  const std::vector<float> soft = vision_->embed(tower);

  const NpyArray tower_golden = read_npy(golden("tiny_png.tower"));
  const NpyArray soft_golden = read_npy(golden("tiny_png.soft"));
  const int64_t vision_hidden = vision_->config().hidden_size;
  const int64_t text_hidden = vision_->text_hidden_size();
  ASSERT_EQ(tower_golden.shape, (std::vector<int64_t>{image.num_soft_tokens, vision_hidden}));
  ASSERT_EQ(soft_golden.shape, (std::vector<int64_t>{image.num_soft_tokens, text_hidden}));
  ASSERT_EQ(tower.size(), tower_golden.data.size());
  ASSERT_EQ(soft.size(), soft_golden.data.size());

  // The tower output is scaled by sqrt(hidden), so its bound is relative to its largest value.
  const Comparison tower_diff = compare_rows(tower.data(), tower_golden.data.data(), image.num_soft_tokens,
                                             vision_hidden);
  double tower_max = 0.0;
  for (float value : tower_golden.data) tower_max = std::max(tower_max, double(std::abs(value)));
  EXPECT_GE(tower_diff.min_cosine, kF32MinCosine) << "worst soft token " << tower_diff.worst_row;
  EXPECT_LE(tower_diff.max_abs_diff, kF32MaxAbsDiff * std::max(1.0, tower_max));

  const Comparison soft_diff = compare_rows(soft.data(), soft_golden.data.data(), image.num_soft_tokens, text_hidden);
  EXPECT_GE(soft_diff.min_cosine, kF32MinCosine) << "worst soft token " << soft_diff.worst_row;
  EXPECT_LE(soft_diff.max_abs_diff, kF32MaxAbsDiff);
  std::printf("%s tower: min cosine %.8f max abs diff %.3g (max |value| %.3g); soft tokens: %.8f / %.3g\n",
              GetParam().c_str(), tower_diff.min_cosine, tower_diff.max_abs_diff, tower_max,
              soft_diff.min_cosine, soft_diff.max_abs_diff);
}

TEST_P(VisionParity, PromptLogitsMatchReference) {
  const nlohmann::json prompts = vision_manifest().at("bundles").at(GetParam());
  for (const char* prompt : {"one_image", "two_images"}) {
    const nlohmann::json& entry = prompts.at(prompt);
    const std::vector<int32_t> ids = entry.at("ids").get<std::vector<int32_t>>();
    std::vector<int> counts;
    const std::vector<float> soft = soft_tokens_of(entry.at("images").get<std::vector<std::string>>(), counts);
    EXPECT_EQ(counts, entry.at("soft_tokens").get<std::vector<int>>()) << prompt;

    const NpyArray expected = read_npy(golden(std::string(prompt) + ".logits"));
    const int64_t vocab = text_->vocab_size();
    ASSERT_EQ(expected.shape, (std::vector<int64_t>{int64_t(ids.size()), vocab})) << prompt;
    // One chunk, then chunks of 16 so that images straddle chunk boundaries.
    for (int64_t chunk : {int64_t(512), int64_t(16)}) {
      const std::vector<float> logits = logits_of(ids, soft, chunk);
      const Comparison diff = compare_rows(logits.data(), expected.data.data(), int64_t(ids.size()), vocab);
      EXPECT_GE(diff.min_cosine, kF32MinCosine) << prompt << " chunk " << chunk << " worst position "
                                                << diff.worst_row;
      EXPECT_LE(diff.max_abs_diff, kF32MaxAbsDiff) << prompt << " chunk " << chunk;
      std::printf("%s %s chunk %lld: min cosine %.8f max abs diff %.3g\n", GetParam().c_str(), prompt,
                  static_cast<long long>(chunk), diff.min_cosine, diff.max_abs_diff);
    }
  }
}

// Guards against a golden that the soft tokens do not move: the plain token embeddings must give
// logits far from the reference.
TEST_P(VisionParity, PromptWithoutSoftTokensDiffers) {
  const nlohmann::json entry = vision_manifest().at("bundles").at(GetParam()).at("one_image");
  const std::vector<int32_t> ids = entry.at("ids").get<std::vector<int32_t>>();
  KVCache cache = text_->make_cache(int64_t(ids.size()));
  std::vector<float> logits;
  text_->forward(ids, cache, Gemma4TextModel::Logits::all, logits);
  const NpyArray expected = read_npy(golden("one_image.logits"));
  const Comparison diff = compare_rows(logits.data(), expected.data.data(), int64_t(ids.size()), text_->vocab_size());
  EXPECT_GT(diff.max_abs_diff, 0.1);
}

TEST_P(VisionParity, SoftTokenCountMismatchThrows) {
  const nlohmann::json entry = vision_manifest().at("bundles").at(GetParam()).at("one_image");
  const std::vector<int32_t> ids = entry.at("ids").get<std::vector<int32_t>>();
  const int64_t hidden = vision_->text_hidden_size();
  std::vector<float> too_few(size_t((entry.at("soft_tokens")[0].get<int>() - 1) * hidden), 0.5f);
  std::vector<float> ragged(size_t(hidden + 1), 0.5f);
  EXPECT_THROW(logits_of(ids, too_few, 512), std::invalid_argument);
  EXPECT_THROW(logits_of(ids, ragged, 512), std::invalid_argument);
}

TEST_P(VisionParity, BadPatchInputThrows) {
  const PreprocessedImage image = preprocess("tiny.png");
  std::vector<float> pixels = image.pixel_values;
  std::vector<int32_t> positions = image.positions;

  // One row short of max_patches.
  std::span<const float> short_pixels(pixels.data(), pixels.size() - size_t(vision_->patch_dim()));
  EXPECT_THROW(vision_->encode_patches(short_pixels, positions), std::invalid_argument);

  // A column beyond the position table.
  std::vector<int32_t> outside = positions;
  outside[0] = vision_->config().position_embedding_size;
  EXPECT_THROW(vision_->encode_patches(pixels, outside), std::invalid_argument);

  // Every patch marked as padding.
  std::vector<int32_t> all_padding(positions.size(), -1);
  EXPECT_THROW(vision_->encode_patches(pixels, all_padding), std::invalid_argument);

  // The first pooled cell left empty: patches of row 0 to 2 dropped to padding.
  std::vector<int32_t> gap = positions;
  for (size_t r = 0; r < gap.size() / 2; ++r) {
    if (gap[2 * r + 1] >= 0 && gap[2 * r + 1] < vision_->config().pooling_kernel_size) {
      gap[2 * r] = -1;
      gap[2 * r + 1] = -1;
    }
  }
  EXPECT_THROW(vision_->encode_patches(pixels, gap), std::invalid_argument);

  std::vector<float> ragged_tower(size_t(vision_->config().hidden_size + 1), 1.0f);
  EXPECT_THROW(vision_->embed(ragged_tower), std::invalid_argument);
}

TEST(VisionModel, BundleWithoutVisionConfigThrows) {
  ThreadPool pool(1);
  const Bundle bundle = Bundle::open(bundle_dir("tiny-gemma3"));
  EXPECT_THROW(Gemma4VisionModel(bundle, pool), std::invalid_argument);
}

// A copy of tiny-hf whose text_config requests bidirectional attention over image tokens, which
// the decoder does not implement: the vision model must reject it instead of running causally.
TEST(VisionModel, BidirectionalImageAttentionThrows) {
  const std::filesystem::path copy =
      parity::copy_bundle_with_edit("tiny-hf", "vision_bidirectional", "config.json", [](nlohmann::json& config) {
        config["text_config"]["use_bidirectional_attention"] = "vision";
      });

  ThreadPool pool(1);
  const Bundle bundle = Bundle::open(copy);
  EXPECT_THROW(Gemma4VisionModel(bundle, pool), std::runtime_error);
  std::filesystem::remove_all(copy);
}

INSTANTIATE_TEST_SUITE_P(TinyBundles, VisionParity, ::testing::Values("tiny-hf", "tiny-mlxvlm"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace mxgemma
