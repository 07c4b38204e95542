// Teacher-forced logits and greedy continuations of the Gemma 4 text decoder against mlx-vlm's
// (goldens recorded by scripts/oracle/record_goldens.py on MLX's CPU backend).
//
// Bounds. The "f32" goldens run mlx-vlm with every floating parameter upcast to fp32, so they differ
// from us only by summation order: per-op relative error ~1e-6, about 1e-5 after the layers (seen:
// at most 2e-5) on logits of magnitude < 30 (the soft-cap). 2e-3 leaves room for longer sums on
// other machines and still fails on any real defect (a wrong norm or RoPE pair moves logits by 0.1+).
// The "native" goldens run mlx-vlm as users do, with 16-bit activations (fp16 or bf16, the
// embedding's dtype). Their distance from the f32 goldens is the reference's own rounding (seen: up
// to 0.05 in fp16 and 0.76 in bf16). We must be no farther from them than the f32 reference is,
// plus the f32 bound.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "engine/sampler.h"
#include "kernels/thread_pool.h"
#include "model/gemma4_text.h"
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

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing " + path.string() + ": run scripts/make_fixtures.sh");
  return nlohmann::json::parse(in);
}

std::vector<int32_t> sequence(const std::string& key) {
  return read_json(kFixtures / "goldens" / "manifest.json").at("sequences").at(key).get<std::vector<int32_t>>();
}

class TextParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    bundle_ = std::make_unique<Bundle>(Bundle::open(bundle_dir(GetParam())));
    model_ = std::make_unique<Gemma4TextModel>(*bundle_, pool_);
  }

  std::vector<float> logits_of(const std::vector<int32_t>& ids, int64_t chunk) {
    KVCache cache = model_->make_cache(int64_t(ids.size()), chunk);
    std::vector<float> logits;
    model_->forward(ids, cache, Gemma4TextModel::Logits::all, logits);
    return logits;
  }

  ThreadPool pool_{2};
  std::unique_ptr<Bundle> bundle_;
  std::unique_ptr<Gemma4TextModel> model_;
};

TEST_P(TextParity, TeacherForcedLogitsMatchReference) {
  for (const char* key : {"seq1", "seq9", "seq45", "seq100"}) {
    const std::vector<int32_t> ids = sequence(key);
    const std::vector<float> logits = logits_of(ids, 512);
    const int64_t vocab = model_->vocab_size();
    const auto golden_path = [&](const char* variant) {
      return kFixtures / "goldens" / (GetParam() + "." + key + "." + variant + ".npy");
    };
    const NpyArray f32 = read_npy(golden_path("f32"));
    const NpyArray native = read_npy(golden_path("native"));
    const std::vector<int64_t> shape = {int64_t(ids.size()), vocab};
    ASSERT_EQ(f32.shape, shape) << golden_path("f32");
    ASSERT_EQ(native.shape, shape) << golden_path("native");

    const Comparison to_f32 = compare_rows(logits.data(), f32.data.data(), shape[0], vocab);
    EXPECT_GE(to_f32.min_cosine, kF32MinCosine) << golden_path("f32") << " worst position " << to_f32.worst_row;
    EXPECT_LE(to_f32.max_abs_diff, kF32MaxAbsDiff) << golden_path("f32");

    const Comparison to_native = compare_rows(logits.data(), native.data.data(), shape[0], vocab);
    const Comparison reference_rounding = compare_rows(f32.data.data(), native.data.data(), shape[0], vocab);
    EXPECT_GE(to_native.min_cosine, reference_rounding.min_cosine - 1e-5) << golden_path("native");
    EXPECT_LE(to_native.max_abs_diff, reference_rounding.max_abs_diff + kF32MaxAbsDiff) << golden_path("native");
    std::printf("%s %s: to f32 min cosine %.8f max abs diff %.3g; to native %.6f / %.3g (reference f32 to native "
                "%.6f / %.3g)\n",
                GetParam().c_str(), key, to_f32.min_cosine, to_f32.max_abs_diff, to_native.min_cosine,
                to_native.max_abs_diff, reference_rounding.min_cosine, reference_rounding.max_abs_diff);
  }
}

TEST_P(TextParity, IntermediatesMatchReference) {
  const std::vector<int32_t> ids = sequence("seq9");
  std::map<std::string, std::vector<float>> seen;
  model_->set_observer([&](const std::string& name, int layer, const float* data, int64_t rows, int64_t cols) {
    const std::string key = layer >= 0 ? "layer" + std::to_string(layer) : name;
    seen[key].assign(data, data + rows * cols);
  });
  logits_of(ids, 512);
  model_->set_observer(nullptr);
  for (const auto& [key, golden_name] : std::vector<std::pair<std::string, std::string>>{
           {"embedding", "embed"}, {"per_layer_inputs", "per_layer_inputs"}, {"layer0", "layer0"},
           {"layer1", "layer1"},   {"layer2", "layer2"},                     {"layer3", "layer3"},
           {"layer4", "layer4"},   {"layer5", "layer5"}}) {
    const auto path = kFixtures / "goldens" / (GetParam() + ".seq9.f32." + golden_name + ".npy");
    const NpyArray golden = read_npy(path);
    ASSERT_TRUE(seen.count(key)) << key;
    ASSERT_EQ(seen[key].size(), golden.data.size()) << path;
    const int64_t cols = golden.shape.back();
    const Comparison c = compare_rows(seen[key].data(), golden.data.data(), int64_t(golden.data.size()) / cols, cols);
    EXPECT_GE(c.min_cosine, kF32MinCosine) << path;
  }
}

TEST_P(TextParity, ChunkedPrefillEqualsOnePass) {
  const std::vector<int32_t> ids = sequence("seq100");
  const std::vector<float> one_pass = logits_of(ids, 512);
  const int64_t vocab = model_->vocab_size();
  // The window is 32: chunks below, at and across it, and chunks that do not divide 100.
  for (int64_t chunk : {1, 7, 31, 32, 33, 64, 99}) {
    const std::vector<float> chunked = logits_of(ids, chunk);
    const Comparison c = compare_rows(chunked.data(), one_pass.data(), int64_t(ids.size()), vocab);
    EXPECT_LE(c.max_abs_diff, 1e-4) << "chunk " << chunk;
  }
}

TEST_P(TextParity, DecodeEqualsPrefill) {
  const std::vector<int32_t> ids = sequence("seq45");
  const std::vector<float> one_pass = logits_of(ids, 512);
  const int64_t vocab = model_->vocab_size();
  KVCache cache = model_->make_cache(int64_t(ids.size()), 512);
  std::vector<float> step_logits;
  for (size_t t = 0; t < ids.size(); ++t) {
    model_->forward(std::span<const int32_t>(&ids[t], 1), cache, Gemma4TextModel::Logits::last, step_logits);
    const Comparison c = compare_rows(step_logits.data(), one_pass.data() + int64_t(t) * vocab, 1, vocab);
    ASSERT_LE(c.max_abs_diff, 1e-4) << "position " << t;
  }
}

// Three sequences of different lengths (one past the sliding window) decoded together give the
// logits each gives alone, and rows do not leak into each other's caches.
TEST_P(TextParity, BatchedDecodeEqualsSeparateDecode) {
  const std::vector<std::vector<int32_t>> prompts = {sequence("seq1"), sequence("seq9"), sequence("seq45")};
  const std::vector<int32_t> next_tokens = {300, 41, 17};
  const int64_t vocab = model_->vocab_size();
  const int steps = 3;

  std::vector<std::vector<float>> alone(prompts.size());
  for (size_t s = 0; s < prompts.size(); ++s) {
    KVCache cache = model_->make_cache(int64_t(prompts[s].size()) + steps, 512);
    std::vector<float> logits;
    model_->forward(prompts[s], cache, Gemma4TextModel::Logits::last, logits);
    for (int step = 0; step < steps; ++step) {
      model_->forward(std::span<const int32_t>(&next_tokens[s], 1), cache, Gemma4TextModel::Logits::last, logits);
      alone[s].insert(alone[s].end(), logits.begin(), logits.end());
    }
  }

  std::vector<KVCache> caches;
  std::vector<float> logits;
  for (const std::vector<int32_t>& prompt : prompts) {
    caches.push_back(model_->make_cache(int64_t(prompt.size()) + steps, 512));
    model_->forward(prompt, caches.back(), Gemma4TextModel::Logits::last, logits);
  }
  std::vector<KVCache*> cache_pointers;
  for (KVCache& cache : caches) cache_pointers.push_back(&cache);
  for (int step = 0; step < steps; ++step) {
    model_->decode_batch(next_tokens, cache_pointers, logits);
    ASSERT_EQ(logits.size(), prompts.size() * size_t(vocab));
    for (size_t s = 0; s < prompts.size(); ++s) {
      const Comparison c = compare_rows(logits.data() + s * vocab, alone[s].data() + step * vocab, 1, vocab);
      EXPECT_LE(c.max_abs_diff, 1e-4) << "sequence " << s << " step " << step;
      EXPECT_EQ(caches[s].length(), int64_t(prompts[s].size()) + step + 1);
    }
  }
}

TEST_P(TextParity, BatchedDecodeRejectsBadInput) {
  KVCache cache = model_->make_cache(4, 512);
  std::vector<float> logits;
  const std::vector<int32_t> two_tokens = {5, 6};
  const std::vector<KVCache*> same_cache_twice = {&cache, &cache};
  EXPECT_THROW(model_->decode_batch(two_tokens, same_cache_twice, logits), std::invalid_argument);
  const std::vector<KVCache*> one_cache = {&cache};
  EXPECT_THROW(model_->decode_batch(two_tokens, one_cache, logits), std::invalid_argument);
  const std::vector<int32_t> outside = {int32_t(model_->vocab_size())};
  EXPECT_THROW(model_->decode_batch(outside, one_cache, logits), std::invalid_argument);
  EXPECT_EQ(cache.length(), 0);
}

TEST_P(TextParity, GreedyContinuationMatchesReference) {
  const nlohmann::json greedy = read_json(kFixtures / "goldens" / (GetParam() + ".greedy.json"));
  for (const nlohmann::json& run : greedy.at("runs")) {
    const std::vector<int32_t> prompt = run.at("prompt_ids").get<std::vector<int32_t>>();
    const std::vector<int32_t> expected = run.at("f32").at("tokens").get<std::vector<int32_t>>();
    const std::vector<double> margins = run.at("f32").at("top2_margin").get<std::vector<double>>();
    KVCache cache = model_->make_cache(int64_t(prompt.size() + expected.size()) + 1, 512);
    std::vector<float> logits;
    model_->forward(prompt, cache, Gemma4TextModel::Logits::last, logits);
    size_t compared = 0;
    for (size_t step = 0; step < expected.size(); ++step) {
      const int32_t token = argmax(logits);
      // Once the reference's top two are closer than our error bound, either pick is right, and
      // the continuations may part from there on.
      if (margins[step] <= 2 * kF32MaxAbsDiff) break;
      ASSERT_EQ(token, expected[step]) << "prompt of " << prompt.size() << " tokens, step " << step;
      ++compared;
      model_->forward(std::span<const int32_t>(&token, 1), cache, Gemma4TextModel::Logits::last, logits);
    }
    std::printf("%s greedy after %zu tokens: %zu of %zu steps compared\n", GetParam().c_str(), prompt.size(),
                compared, expected.size());
    EXPECT_GE(compared, expected.size() / 2) << "too few steps above the margin to be a meaningful check";
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, TextParity, ::testing::Values("tiny-hf", "tiny-mlxvlm", "tiny-affine", "tiny-affine8"));

}  // namespace
}  // namespace mxgemma
