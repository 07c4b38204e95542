// The generation loop shared by the CLI and the server: batched prefill of the prompt, then
// token-by-token decode with sampling, streaming text through a callback until a stop condition.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "model/gemma4_text.h"
#include "text/tokenizer.h"

namespace mxgemma {

struct GenerationParams {
  int max_tokens = 256;
  SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;  // e.g. the EOS list of generation_config.json
  std::vector<std::string> stop_strings;
  int64_t prefill_chunk = 512;  // tokens per prefill forward pass
};

enum class FinishReason { stop_token, stop_string, length, cancelled };
const char* finish_reason_name(FinishReason reason);

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, the stop token excluded
  std::string text;             // visible text, stop strings cut off
  FinishReason finish_reason = FinishReason::length;
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;  // from the first generated token to the last
  double time_to_first_token = 0.0;
};

// Receives each new piece of visible text (whole UTF-8 characters); returns false to stop.
using TextCallback = std::function<bool(const std::string& piece)>;

class Generator {
 public:
  Generator(Gemma4TextModel& model, const Tokenizer& tokenizer) : model_(model), tokenizer_(tokenizer) {}

  // Runs the prompt from an empty cache of `context_size` positions. `soft_tokens` fill the
  // prompt's image or audio placeholders (MediaPrompt::soft_tokens). Throws
  // std::invalid_argument when the prompt is empty or does not fit the context with room for one
  // generated token.
  GenerationResult generate(const std::vector<int32_t>& prompt, const GenerationParams& params,
                            int64_t context_size, const TextCallback& on_text,
                            std::span<const Gemma4TextModel::SoftTokens> soft_tokens = {});

 private:
  Gemma4TextModel& model_;
  const Tokenizer& tokenizer_;
};

// Holds back text that may be the start of a stop string, so no part of a stop string is emitted.
class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stop_strings) : stop_strings_(std::move(stop_strings)) {}
  // Adds text; returns what can be emitted now. Sets `stopped` when a stop string is complete,
  // and then returns the text before it.
  std::string push(const std::string& text, bool& stopped);
  // Returns the held-back text at the end of the stream.
  std::string finish();

 private:
  std::vector<std::string> stop_strings_;
  std::string pending_;
};

}  // namespace mxgemma
