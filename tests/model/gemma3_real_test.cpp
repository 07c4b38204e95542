// Real Gemma 3 270M weights end to end: the MXFP4 bundle that scripts/fetch_real_model.sh makes,
// against mlx-lm's greedy output on the same bundle (fixtures/goldens/gemma3_270m/greedy.json,
// recorded by scripts/oracle/record_gemma3_goldens.py real).
//
// These tests fail, never skip, when the bundle is absent: CI runs scripts/fetch_real_model.sh.
//
// We compare with the "f32" run of the goldens (mlx-lm with parameters upcast to fp32), which
// differs from our fp32 decoder only by summation order. Greedy tokens must be equal for all 32
// steps, except that the two may part at a step where the reference's top-2 logit margin is below
// kTinyMargin: there a summation-order difference of about 1e-3 may flip the argmax, and after the
// flip the continuations are different texts, so nothing later can be compared.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "kernels/thread_pool.h"
#include "model/gemma4_text.h"
#include "tests/cli/cli_runner.h"
#include "tests/model/gemma3_goldens.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace mxgemma {
namespace {

constexpr float kTinyMargin = 0.02f;

const std::filesystem::path kRepoRoot = std::filesystem::path(MXGEMMA_FIXTURE_DIR).parent_path();
const char kFetch[] = "run scripts/fetch_real_model.sh";

// $MXGEMMA_GEMMA3_BUNDLE, else models/gemma3-270m of the repository.
std::filesystem::path real_bundle_dir() {
  const char* from_env = std::getenv("MXGEMMA_GEMMA3_BUNDLE");
  return from_env != nullptr ? std::filesystem::path(from_env) : kRepoRoot / "models" / "gemma3-270m";
}

class Gemma3Real : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::filesystem::path dir = real_bundle_dir();
    if (!std::filesystem::exists(dir / "config.json")) {
      setup_error_ = "the real Gemma 3 270M bundle is missing at " + dir.string() + ": " + kFetch;
      return;
    }
    bundle_ = new Bundle(Bundle::open(dir));
    goldens_ = new nlohmann::json(test::read_golden_json(
        kRepoRoot / "fixtures" / "goldens" / "gemma3_270m" / "greedy.json",
        "run scripts/oracle/record_gemma3_goldens.py real"));
    const std::string differences =
        test::compare_fingerprints(bundle_->tensors(), goldens_->at("tensor_fingerprints"));
    if (!differences.empty()) {
      setup_error_ = dir.string() + " is not the bundle of the goldens (" + differences + "): " + kFetch +
                     ", or record the goldens again on this bundle";
      return;
    }
    pool_ = new ThreadPool();
    model_ = new Gemma4TextModel(*bundle_, *pool_);
    tokenizer_ = new Tokenizer(Tokenizer::from_file(bundle_->tokenizer_json_path()));
  }

  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static inline std::string setup_error_;
  static inline Bundle* bundle_ = nullptr;
  static inline nlohmann::json* goldens_ = nullptr;
  static inline ThreadPool* pool_ = nullptr;
  static inline Gemma4TextModel* model_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
};

TEST_F(Gemma3Real, PromptIdsMatchTemplateAndTokenizer) {
  const ChatTemplate chat_template(bundle_->tokenizer_config().chat_template);
  for (const auto& entry : goldens_->at("prompts")) {
    const nlohmann::json context = {
        {"messages", {{{"role", "user"}, {"content", entry.at("prompt")}}}},
        {"add_generation_prompt", true},
        {"bos_token", bundle_->tokenizer_config().bos_token},
        {"eos_token", bundle_->tokenizer_config().eos_token},
    };
    const std::string text = chat_template.render(context);
    EXPECT_EQ(text, entry.at("prompt_text").get<std::string>());
    EXPECT_EQ(tokenizer_->encode(text, /*add_bos=*/false), entry.at("prompt_ids").get<std::vector<int32_t>>())
        << entry.at("prompt");
  }
}

TEST_F(Gemma3Real, GreedyMatchesMlxLm) {
  const auto eos = goldens_->at("eos_token_ids").get<std::vector<int32_t>>();
  for (const auto& entry : goldens_->at("prompts")) {
    const auto prompt = entry.at("prompt_ids").get<std::vector<int32_t>>();
    const auto& reference = entry.at("runs").at("f32");
    const auto expected = reference.at("tokens").get<std::vector<int32_t>>();
    const auto margins = reference.at("top2_margin").get<std::vector<float>>();

    KVCache cache = model_->make_cache(int64_t(prompt.size() + expected.size()));
    std::vector<float> logits;
    std::vector<int32_t> generated;
    std::span<const int32_t> input = prompt;
    for (size_t step = 0; step < expected.size(); ++step) {
      model_->forward(input, cache, Gemma4TextModel::Logits::last, logits);
      generated.push_back(int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()));
      if (std::find(eos.begin(), eos.end(), generated.back()) != eos.end()) break;
      input = std::span(generated).last(1);
    }

    const auto mismatch = std::mismatch(generated.begin(), generated.end(), expected.begin(), expected.end());
    const size_t step = size_t(mismatch.first - generated.begin());
    if (step == expected.size() && step == generated.size()) continue;
    ASSERT_LT(step, margins.size()) << entry.at("prompt") << ": generated more tokens than the reference";
    EXPECT_LT(margins[step], kTinyMargin)
        << entry.at("prompt") << ": first different token at step " << step << " (ours "
        << tokenizer_->decode(std::span(generated).subspan(0, step + 1)) << "), where the reference's top-2 margin "
        << margins[step] << " is no near-tie; reference: " << reference.at("text");
  }
}

// The 270M checkpoint is Google's pretrained model, not the instruction-tuned one, so it answers a
// plain question as text continuation (--raw) rather than inside the chat template.
TEST_F(Gemma3Real, RunAnswersCapitalOfFrance) {
  const test::CommandResult result = test::run_cli(
      "run -m " + bundle_->dir().string() +
      " --raw -p 'What is the capital of France?' --temperature 0 -n 24");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("Paris"), std::string::npos) << result.out;
}

}  // namespace
}  // namespace mxgemma
