// Loads the tiny bundles that scripts/make_fixtures.sh writes with the real converters (the JANG
// converter for tiny-hf, mlx-vlm's convert for the others).
#include <filesystem>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "bundle/bundle.h"
#include "bundle_test_util.h"

namespace mxgemma {
namespace {

namespace fs = std::filesystem;
using testing::contains;

// The fixture folder; fails the test (no skip) when it has not been generated.
fs::path fixture(const std::string& name) {
  const fs::path dir = fs::path(MXGEMMA_FIXTURE_DIR) / "generated" / name;
  if (!fs::exists(dir / "config.json")) {
    ADD_FAILURE() << "fixture missing: run scripts/make_fixtures.sh (" << dir.string() << ")";
  }
  return dir;
}

// Decoder linears the published MXFP4 split quantizes: q, k, v, o, gate, up, down and the two
// per-layer-input linears on own-KV layers (no k, v on KV-shared layers), plus
// embed_tokens_per_layer and per_layer_model_projection.
int expected_quantized(const TextConfig& text) {
  const int shared = text.num_kv_shared_layers;
  return (text.num_hidden_layers - shared) * 9 + shared * 7 + 2;
}

void expect_common(const Bundle& bundle) {
  const ModelConfig& config = bundle.config();
  EXPECT_EQ(config.model_type, "gemma4");
  EXPECT_TRUE(config.vision.has_value());
  EXPECT_TRUE(config.audio.has_value());
  EXPECT_GT(config.text.num_kv_shared_layers, 0);
  EXPECT_EQ(bundle.num_quantized_tensors(), expected_quantized(config.text));
  EXPECT_FALSE(bundle.tokenizer_config().chat_template.empty());
  EXPECT_FALSE(bundle.generation_config().eos_token_ids.empty());
  EXPECT_TRUE(bundle.unused_tensors().empty()) << bundle.unused_tensors().front();

  const TextConfig& text = config.text;
  const int shared_layer = text.num_hidden_layers - 1;
  const WeightMatrix up = bundle.linear(
      bundle.text_tensor_name("layers." + std::to_string(shared_layer) + ".mlp.up_proj"));
  EXPECT_EQ(up.rows, text.layer_intermediate_size(shared_layer));
  EXPECT_EQ(up.cols, text.hidden_size);
  EXPECT_TRUE(up.quantized());
  const WeightMatrix embed = bundle.linear(bundle.text_tensor_name("embed_tokens"));
  EXPECT_FALSE(embed.quantized());
  EXPECT_EQ(embed.rows, text.vocab_size);
  const std::string shared_k_proj =
      "layers." + std::to_string(shared_layer) + ".self_attn.k_proj.weight";
  EXPECT_FALSE(bundle.tensors().contains(bundle.text_tensor_name(shared_k_proj)));
}

TEST(Fixtures, TinyHf) {
  const Bundle bundle = Bundle::open(fixture("tiny-hf"));
  EXPECT_EQ(bundle.layout(), BundleLayout::hf_names);
  EXPECT_TRUE(bundle.jang_config().has_value());
  EXPECT_EQ(bundle.config().quantization.key, "quantization");
  EXPECT_EQ(bundle.linear(bundle.text_tensor_name("layers.0.self_attn.q_proj")).format,
            WeightFormat::mxfp4);
  // The converter keeps media towers 16-bit in bfloat16.
  EXPECT_EQ(bundle.tensor("audio_tower.subsample_conv_projection.layer0.conv.weight").dtype,
            DType::bf16);
  expect_common(bundle);
}

TEST(Fixtures, TinyMlxVlm) {
  const Bundle bundle = Bundle::open(fixture("tiny-mlxvlm"));
  EXPECT_EQ(bundle.layout(), BundleLayout::mlx_vlm);
  EXPECT_EQ(bundle.linear(bundle.text_tensor_name("layers.0.mlp.down_proj")).format,
            WeightFormat::mxfp4);
  expect_common(bundle);
}

TEST(Fixtures, TinyAffine) {
  for (const char* name : {"tiny-affine", "tiny-affine8"}) {
    SCOPED_TRACE(name);
    const Bundle bundle = Bundle::open(fixture(name));
    EXPECT_EQ(bundle.layout(), BundleLayout::mlx_vlm);
    const WeightMatrix matrix = bundle.linear(bundle.text_tensor_name("layers.1.self_attn.o_proj"));
    EXPECT_EQ(matrix.format, WeightFormat::affine);
    EXPECT_EQ(matrix.bits, bundle.config().quantization.base.bits);
    EXPECT_EQ(matrix.group_size, 64);
    EXPECT_NE(matrix.affine_scales, nullptr);
    EXPECT_NE(matrix.affine_biases, nullptr);
    expect_common(bundle);
  }
}

TEST(Fixtures, SourceCheckpointRejected) {
  try {
    Bundle::open(fixture("tiny-source"));
    FAIL() << "no exception";
  } catch (const std::runtime_error& error) {
    EXPECT_TRUE(contains(error.what(), "Hugging Face checkpoint names"));
  }
}

}  // namespace
}  // namespace mxgemma
