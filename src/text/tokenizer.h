// The Hugging Face tokenizer.json of Gemma bundles: BPE with byte fallback, its normalizer,
// pre-tokenizer and decoder, and added tokens matched before BPE.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mxgemma {

class Tokenizer {
 public:
  // Throws std::runtime_error naming the file and field at fault.
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // parse_special: match added-token text (e.g. "<start_of_turn>") as its id; false treats it as
  // plain text. add_bos prepends the BOS id.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special = true) const;
  // Text of the ids through the file's decoder, as Hugging Face `tokenizers` decodes: a run of
  // byte-fallback tokens that is not valid UTF-8 (e.g. a character cut short) becomes one U+FFFD
  // per byte. skip_special drops added tokens marked special. Throws std::out_of_range for an id
  // that names no token.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // Size of the id space: one more than the largest vocabulary or added-token id.
  int32_t vocab_size() const;
  // -1 when the text is not a single token.
  int32_t token_id(std::string_view token_text) const;
  // The vocabulary entry of an id (e.g. "▁hello", "<0x0A>"); throws std::out_of_range when invalid.
  const std::string& token_text(int32_t id) const;
  bool is_special(int32_t id) const;
  int32_t bos_id() const;
  int32_t eos_id() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of ids into text pieces that never split a UTF-8 character: bytes of an
// incomplete character are held until the rest arrives.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  // Returns the new complete text after adding `id`; possibly empty.
  std::string push(int32_t id);
  // Returns what is held back, invalid bytes replaced by U+FFFD; call at end of stream. The
  // decoder can then be reused for a new stream.
  std::string finish();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  // The ids of the last emitted piece, kept as decoding context, then the ids not yet emitted.
  std::vector<int32_t> ids_;
  // Decoding of the context ids, ids_[0, prefix_ids_).
  std::string prefix_;
  size_t prefix_ids_ = 0;
};

}  // namespace mxgemma
