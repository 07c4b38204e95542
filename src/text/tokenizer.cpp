// Hugging Face `tokenizers` (0.23) pipeline for the parts Gemma's tokenizer.json uses:
//   added tokens -> normalizer -> pre-tokenizer -> BPE model  (encode)
//   ids -> tokens -> decoder chain                            (decode)
// Goals: the same ids and text as `tokenizers` for every input, and a fast load of the 262k-token
// file. Non-goals: training, offsets, truncation and padding, regex patterns, Unicode
// normalization forms. A file that needs one of them is rejected with the field named.
#include "text/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <queue>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "text/utf8.h"
#include "util/log.h"
#include "util/mapped_file.h"

namespace mxgemma {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// JSON scanning. The vocabulary and merges are 99% of the file, so they are read straight into
// the tokenizer's tables. Every other value is cut out as raw text and given to nlohmann::json.

class JsonScanner {
 public:
  JsonScanner(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(file_ + ": invalid JSON at byte " + std::to_string(pos_) + ": " +
                             what);
  }

  void skip_whitespace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
      ++pos_;
    }
  }

  bool at_end() {
    skip_whitespace();
    return pos_ >= text_.size();
  }

  char peek() {
    skip_whitespace();
    if (pos_ >= text_.size()) fail("unexpected end of file");
    return text_[pos_];
  }

  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  bool consume(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  // Advances to the next member of an object or array whose '{' or '[' was read. Returns false
  // after consuming `close`, and consumes the ',' between members.
  bool next_member(char close, bool first) {
    if (consume(close)) return false;
    if (!first) {
      expect(',');
    }
    return true;
  }

  // Reads a JSON string into `out`, unescaping it.
  void read_string(std::string& out) {
    expect('"');
    out.clear();
    while (true) {
      const size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] != '"' && text_[pos_] != '\\' &&
             static_cast<unsigned char>(text_[pos_]) >= 0x20) {
        ++pos_;
      }
      out.append(text_.substr(start, pos_ - start));
      if (pos_ >= text_.size()) fail("unterminated string");
      const char c = text_[pos_++];
      if (c == '"') return;
      if (c != '\\') fail("control character inside a string");
      read_escape(out);
    }
  }

  int64_t read_integer() {
    skip_whitespace();
    const size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    int64_t value = 0;
    size_t digits = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (value > (int64_t{1} << 40)) fail("integer out of range");
      value = value * 10 + (text_[pos_] - '0');
      ++pos_;
      ++digits;
    }
    if (digits == 0) fail("expected an integer");
    if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) {
      fail("expected an integer, found a fraction or exponent");
    }
    return text_[start] == '-' ? -value : value;
  }

  // Skips one value of any type and returns its raw text.
  std::string_view skip_value() {
    skip_whitespace();
    const size_t start = pos_;
    if (pos_ >= text_.size()) fail("expected a value");
    const char first = text_[pos_];
    if (first == '"') {
      skip_string();
    } else if (first == '{' || first == '[') {
      int depth = 0;
      do {
        if (pos_ >= text_.size()) fail("unexpected end of file inside a value");
        const char c = text_[pos_];
        if (c == '"') {
          skip_string();
          continue;
        }
        if (c == '{' || c == '[') ++depth;
        if (c == '}' || c == ']') --depth;
        ++pos_;
      } while (depth > 0);
    } else {
      // A number or literal runs to the next delimiter; nlohmann::json or the caller checks it.
      while (pos_ < text_.size() && std::string_view(",}] \n\r\t").find(text_[pos_]) ==
                                        std::string_view::npos) {
        ++pos_;
      }
    }
    if (pos_ == start) fail("expected a value");
    return text_.substr(start, pos_ - start);
  }

  json parse_value(const std::string& field) {
    const std::string_view raw = skip_value();
    try {
      return json::parse(raw);
    } catch (const json::parse_error& error) {
      throw std::runtime_error(file_ + ": invalid JSON in field \"" + field + "\": " +
                               error.what());
    }
  }

  size_t position() const { return pos_; }
  void set_position(size_t pos) { pos_ = pos; }

 private:
  void skip_string() {
    ++pos_;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') return;
      if (c == '\\') ++pos_;
    }
    fail("unterminated string");
  }

  uint32_t read_hex4() {
    if (pos_ + 4 > text_.size()) fail("truncated \\u escape");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      value <<= 4;
      if (c >= '0' && c <= '9') {
        value |= uint32_t(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        value |= uint32_t(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        value |= uint32_t(c - 'A' + 10);
      } else {
        fail("invalid hex digit in \\u escape");
      }
    }
    return value;
  }

  void read_escape(std::string& out) {
    if (pos_ >= text_.size()) fail("unterminated escape");
    const char c = text_[pos_++];
    switch (c) {
      case '"': out.push_back('"'); return;
      case '\\': out.push_back('\\'); return;
      case '/': out.push_back('/'); return;
      case 'b': out.push_back('\b'); return;
      case 'f': out.push_back('\f'); return;
      case 'n': out.push_back('\n'); return;
      case 'r': out.push_back('\r'); return;
      case 't': out.push_back('\t'); return;
      case 'u': break;
      default: fail(std::string("invalid escape '\\") + c + "'");
    }
    char32_t code_point = read_hex4();
    if (code_point >= 0xDC00 && code_point <= 0xDFFF) fail("lone low surrogate in \\u escape");
    if (code_point >= 0xD800 && code_point <= 0xDBFF) {
      // UTF-16 surrogate pair: a high surrogate must be followed by \u and a low surrogate.
      if (pos_ + 2 > text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u') {
        fail("lone high surrogate in \\u escape");
      }
      pos_ += 2;
      const uint32_t low = read_hex4();
      if (low < 0xDC00 || low > 0xDFFF) fail("high surrogate not followed by a low surrogate");
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
    }
    utf8::append(out, code_point);
  }

  std::string_view text_;
  const std::string& file_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Lookup tables.

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Vocabulary text -> id over the strings of the model's id -> text table. It uses open addressing
// with 8-byte slots, one cache miss per probe, because std::unordered_map took 40% of the load
// time in a perf profile.
class TokenIndex {
 public:
  // Indexes every present id of `tokens`, which must outlive the index; returns the first id
  // whose text was already indexed under another id, or -1.
  int32_t build(const std::vector<std::string>& tokens, const std::vector<bool>& present) {
    tokens_ = &tokens;
    size_t capacity = 1024;
    while (capacity < tokens.size() * 2) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    size_ = 0;
    for (size_t id = 0; id < tokens.size(); ++id) {
      if (!present[id]) continue;
      const uint64_t hash = hash_of(tokens[id]);
      size_t i = hash & mask_;
      for (; slots_[i].id >= 0; i = (i + 1) & mask_) {
        if (slots_[i].hash == uint32_t(hash >> 32) && tokens[slots_[i].id] == tokens[id]) {
          return int32_t(id);
        }
      }
      slots_[i] = {uint32_t(hash >> 32), int32_t(id)};
      ++size_;
    }
    return -1;
  }

  int32_t find(std::string_view text) const {
    if (slots_.empty()) return -1;
    const uint64_t hash = hash_of(text);
    for (size_t i = hash & mask_; slots_[i].id >= 0; i = (i + 1) & mask_) {
      if (slots_[i].hash == uint32_t(hash >> 32) && (*tokens_)[slots_[i].id] == text) {
        return slots_[i].id;
      }
    }
    return -1;
  }

  size_t size() const { return size_; }

 private:
  struct Slot {
    uint32_t hash = 0;  // high half of the 64-bit hash; the low half picks the slot
    int32_t id = -1;
  };

  static uint64_t hash_of(std::string_view text) { return std::hash<std::string_view>{}(text); }

  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// BPE merges keyed by the ids of the pair. It uses open addressing with linear probing, because
// half a million entries in std::unordered_map are slow to build.
class MergeMap {
 public:
  struct Merge {
    int32_t rank = -1;
    int32_t new_id = -1;
  };

  // Keeps the load factor at most 2/3: 16 MB of slots for Gemma's 515k merges.
  void reserve(size_t count) {
    size_t capacity = 1024;
    while (capacity * 2 < count * 3) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    size_ = 0;
  }

  // A pair listed twice keeps its later rank, as in `tokenizers` 0.23.
  void insert_or_assign(int32_t left, int32_t right, Merge merge) {
    if ((size_ + 1) * 3 > slots_.size() * 2) grow();
    Slot& slot = find_slot(pack(left, right));
    if (slot.key == kEmpty) ++size_;
    slot.key = pack(left, right);
    slot.merge = merge;
  }

  const Merge* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge;
  };

  static uint64_t pack(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }
  static size_t hash(uint64_t key) { return size_t((key * 0x9E3779B97F4A7C15ull) >> 20); }

  Slot& find_slot(uint64_t key) {
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key || slots_[i].key == kEmpty) return slots_[i];
    }
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    reserve(std::max<size_t>(old.size(), 1024) * 4 / 3 + 1);  // doubles the capacity
    for (const Slot& slot : old) {
      if (slot.key == kEmpty) continue;
      find_slot(slot.key) = slot;
      ++size_;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// Byte trie over added-token patterns. A scan takes the leftmost, then longest, match and
// resumes after it, as the LeftmostLongest Aho-Corasick automaton of `tokenizers` does.
class AddedTokenTrie {
 public:
  AddedTokenTrie() { root_children_.fill(-1); }

  void insert(std::string_view pattern, int32_t token_index) {
    if (pattern.empty()) return;
    int32_t node = child_of_root(static_cast<unsigned char>(pattern[0]));
    for (size_t i = 1; i < pattern.size(); ++i) {
      node = child(node, static_cast<unsigned char>(pattern[i]));
    }
    // The first token with a given pattern wins, like the lowest pattern id in Aho-Corasick.
    if (nodes_[node].token_index < 0) nodes_[node].token_index = token_index;
    empty_ = false;
  }

  bool empty() const { return empty_; }

  // The longest pattern that starts at text[pos]: {length, token_index}, or token_index -1.
  std::pair<size_t, int32_t> longest_match(std::string_view text, size_t pos) const {
    std::pair<size_t, int32_t> best{0, -1};
    int32_t node = root_children_[static_cast<unsigned char>(text[pos])];
    for (size_t i = pos + 1; node >= 0; ++i) {
      if (nodes_[node].token_index >= 0) best = {i - pos, nodes_[node].token_index};
      if (i >= text.size()) break;
      node = find_child(node, static_cast<unsigned char>(text[i]));
    }
    return best;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t token_index = -1;
  };

  int32_t child_of_root(unsigned char byte) {
    if (root_children_[byte] < 0) {
      root_children_[byte] = int32_t(nodes_.size());
      nodes_.emplace_back();
    }
    return root_children_[byte];
  }

  int32_t find_child(int32_t node, unsigned char byte) const {
    for (const auto& [key, index] : nodes_[node].children) {
      if (key == byte) return index;
    }
    return -1;
  }

  int32_t child(int32_t node, unsigned char byte) {
    if (const int32_t found = find_child(node, byte); found >= 0) return found;
    const auto index = int32_t(nodes_.size());
    nodes_[node].children.emplace_back(byte, index);
    nodes_.emplace_back();
    return index;
  }

  std::array<int32_t, 256> root_children_;
  std::vector<Node> nodes_;
  bool empty_ = true;
};

// ---------------------------------------------------------------------------------------------
// Pipeline steps. Sequence components are flattened into these lists when loading, which is
// equivalent because a Sequence applies its members in order.

struct NormalizerStep {
  enum class Kind { replace, prepend, strip };
  Kind kind = Kind::replace;
  std::string pattern;  // replace
  std::string content;  // replace, prepend
  bool strip_left = false;
  bool strip_right = false;
};

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

struct SplitStep {
  std::string pattern;
  SplitBehavior behavior = SplitBehavior::isolated;
  bool invert = false;
};

struct DecoderStep {
  enum class Kind { replace, byte_fallback, fuse, strip };
  Kind kind = Kind::replace;
  std::string pattern;
  std::string content;
  char32_t strip_char = 0;
  size_t strip_start = 0;
  size_t strip_stop = 0;
};

struct Segment {
  size_t begin = 0;
  size_t end = 0;
  int32_t token_id = -1;  // -1 for text that still needs the model
};

void replace_all(std::string& text, std::string_view pattern, std::string_view content) {
  if (pattern.empty() || text.find(pattern) == std::string::npos) return;
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  size_t pos = 0;
  for (size_t hit = text.find(pattern); hit != std::string::npos; hit = text.find(pattern, pos)) {
    out.append(text, pos, hit - pos);
    out.append(content);
    pos = hit + pattern.size();
  }
  out.append(text, pos, std::string::npos);
  text = std::move(out);
}

// Byte offset where the run of whitespace that ends `text` begins (regex \s*$).
size_t trailing_whitespace_start(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t begin = end - 1;
    while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
    const size_t length = utf8::sequence_length(text, begin);
    if (length != end - begin || !utf8::is_whitespace(utf8::decode(text, begin, length))) break;
    end = begin;
  }
  return end;
}

// Byte length of the run of whitespace that starts `text` (regex ^\s*).
size_t leading_whitespace_length(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t length = utf8::sequence_length(text, pos);
    if (length == 0 || !utf8::is_whitespace(utf8::decode(text, pos, length))) break;
    pos += length;
  }
  return pos;
}

// Rust regex \w on one character: alphanumeric or the connector '_'.
bool is_word_char(char32_t c) { return c == '_' || utf8::is_alphanumeric(c); }

bool ends_with_word(std::string_view text) {
  if (text.empty()) return false;
  size_t begin = text.size() - 1;
  while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
  const size_t length = utf8::sequence_length(text, begin);
  return length > 0 && is_word_char(utf8::decode(text, begin, length));
}

bool starts_with_word(std::string_view text) {
  if (text.empty()) return false;
  const size_t length = utf8::sequence_length(text, 0);
  return length > 0 && is_word_char(utf8::decode(text, 0, length));
}

bool parse_byte_token(std::string_view token, unsigned char& byte) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return false;
  unsigned value = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = token[i];
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= unsigned(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      value |= unsigned(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      value |= unsigned(c - 'A' + 10);
    } else {
      return false;
    }
  }
  byte = static_cast<unsigned char>(value);
  return true;
}

bool ends_with_replacement_char(std::string_view text) {
  return text.size() >= utf8::kReplacementUtf8.size() &&
         text.substr(text.size() - utf8::kReplacementUtf8.size()) == utf8::kReplacementUtf8;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct Tokenizer::Impl {
  std::string file;

  // The model's vocabulary by id; `vocab_present` is false for ids no entry names.
  std::vector<std::string> vocab_tokens;
  std::vector<bool> vocab_present;
  TokenIndex vocab;
  // Text of every id, added tokens first as in `tokenizers`; nullptr for unused ids.
  std::vector<const std::string*> id_text;
  std::vector<bool> special;
  TokenMap added_ids;

  // BPE model options.
  MergeMap merges;
  std::string unk_token;
  bool has_unk = false;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::array<int32_t, 256> byte_ids{};

  bool has_normalizer = false;
  std::vector<NormalizerStep> normalizer;
  std::vector<SplitStep> pre_tokenizer;
  bool has_decoder = false;
  std::vector<DecoderStep> decoder;

  std::vector<AddedToken> added_tokens;
  AddedTokenTrie raw_trie;         // added tokens with normalized=false, matched on the input
  AddedTokenTrie normalized_trie;  // normalized=true, matched on normalized text

  int32_t bos = -1;
  int32_t eos = -1;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(file + ": " + what);
  }

  // Loading (see the definitions below).
  void load(std::string_view text);
  void read_model(JsonScanner& scanner);
  void read_vocab(JsonScanner& scanner);
  void read_merges(JsonScanner& scanner);
  void read_model_options(const json& options);
  void read_added_tokens(const json& list);
  void read_normalizer(const json& node, const std::string& field);
  void read_pre_tokenizer(const json& node, const std::string& field);
  void read_decoder(const json& node, const std::string& field);
  std::string read_string_pattern(const json& node, const std::string& field) const;
  void assign_added_token_ids();
  void build_tables();

  // Encoding.
  void normalize(std::string& text) const;
  std::vector<Segment> split_on_added_tokens(std::string_view text, const AddedTokenTrie& trie,
                                             bool parse_special) const;
  void pre_tokenize(std::string_view text, std::vector<std::string_view>& words) const;
  void encode_word(std::string_view word, std::vector<int32_t>& ids) const;
  void encode_plain(std::string_view text, bool parse_special, std::vector<int32_t>& ids) const;

  // Decoding.
  std::vector<std::string> run_decoder(std::vector<std::string> tokens) const;
};

// ---------------------------------------------------------------------------------------------
// Loading.

namespace {

bool bool_field(const json& node, const char* key, bool fallback, const std::string& field,
                const std::string& file) {
  if (!node.contains(key) || node[key].is_null()) return fallback;
  if (!node[key].is_boolean()) {
    throw std::runtime_error(file + ": field \"" + field + "." + key + "\" must be a boolean");
  }
  return node[key].get<bool>();
}

// Member `key` of `node` as a string, "" when absent or null.
std::string string_field(const json& node, const char* key, const std::string& field,
                         const std::string& file) {
  if (!node.contains(key) || node[key].is_null()) return "";
  if (!node[key].is_string()) {
    throw std::runtime_error(file + ": field \"" + field + "." + key + "\" must be a string");
  }
  return node[key].get<std::string>();
}

size_t count_field(const json& node, const char* key, const std::string& field,
                   const std::string& file) {
  if (!node.contains(key) || node[key].is_null()) return 0;
  if (!node[key].is_number_unsigned()) {
    throw std::runtime_error(file + ": field \"" + field + "." + key +
                             "\" must be an unsigned integer");
  }
  return node[key].get<size_t>();
}

json array_field(const json& node, const char* key, const std::string& field,
                 const std::string& file) {
  if (!node.contains(key) || !node[key].is_array()) {
    throw std::runtime_error(file + ": field \"" + field + "." + key + "\" must be an array");
  }
  return node[key];
}

std::string type_of(const json& node, const std::string& field, const std::string& file) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string()) {
    throw std::runtime_error(file + ": field \"" + field + "\" must be an object with a \"type\"");
  }
  return node["type"].get<std::string>();
}

}  // namespace

std::string Tokenizer::Impl::read_string_pattern(const json& node, const std::string& field) const {
  if (node.is_object() && node.contains("String") && node["String"].is_string()) {
    return node["String"].get<std::string>();
  }
  if (node.is_object() && node.contains("Regex")) {
    fail("unsupported regex pattern in \"" + field + "\"; only {\"String\": ...} patterns are "
         "implemented");
  }
  fail("field \"" + field + "\" must be {\"String\": ...}");
}

void Tokenizer::Impl::read_normalizer(const json& node, const std::string& field) {
  if (node.is_null()) return;
  has_normalizer = true;
  const std::string type = type_of(node, field, file);
  if (type == "Sequence") {
    const json members = array_field(node, "normalizers", field, file);
    for (size_t i = 0; i < members.size(); ++i) {
      read_normalizer(members[i], field + ".normalizers[" + std::to_string(i) + "]");
    }
    return;
  }
  NormalizerStep step;
  if (type == "Replace") {
    step.kind = NormalizerStep::Kind::replace;
    step.pattern = read_string_pattern(node.value("pattern", json()), field + ".pattern");
    step.content = string_field(node, "content", field, file);
  } else if (type == "Prepend") {
    step.kind = NormalizerStep::Kind::prepend;
    step.content = string_field(node, "prepend", field, file);
  } else if (type == "Strip") {
    step.kind = NormalizerStep::Kind::strip;
    step.strip_left = bool_field(node, "strip_left", false, field, file);
    step.strip_right = bool_field(node, "strip_right", false, field, file);
  } else {
    fail("unsupported normalizer type \"" + type + "\" in \"" + field +
         "\"; implemented: Sequence, Replace, Prepend, Strip");
  }
  normalizer.push_back(std::move(step));
}

void Tokenizer::Impl::read_pre_tokenizer(const json& node, const std::string& field) {
  if (node.is_null()) return;
  const std::string type = type_of(node, field, file);
  if (type == "Sequence") {
    const json members = array_field(node, "pretokenizers", field, file);
    for (size_t i = 0; i < members.size(); ++i) {
      read_pre_tokenizer(members[i], field + ".pretokenizers[" + std::to_string(i) + "]");
    }
    return;
  }
  if (type != "Split") {
    fail("unsupported pre_tokenizer type \"" + type + "\" in \"" + field +
         "\"; implemented: Sequence, Split");
  }
  SplitStep step;
  step.pattern = read_string_pattern(node.value("pattern", json()), field + ".pattern");
  step.invert = bool_field(node, "invert", false, field, file);
  const std::string behavior = string_field(node, "behavior", field, file);
  if (behavior == "Removed") {
    step.behavior = SplitBehavior::removed;
  } else if (behavior == "Isolated") {
    step.behavior = SplitBehavior::isolated;
  } else if (behavior == "MergedWithPrevious") {
    step.behavior = SplitBehavior::merged_with_previous;
  } else if (behavior == "MergedWithNext") {
    step.behavior = SplitBehavior::merged_with_next;
  } else if (behavior == "Contiguous") {
    step.behavior = SplitBehavior::contiguous;
  } else {
    fail("invalid split behavior \"" + behavior + "\" in \"" + field + ".behavior\"");
  }
  pre_tokenizer.push_back(std::move(step));
}

void Tokenizer::Impl::read_decoder(const json& node, const std::string& field) {
  if (node.is_null()) return;
  has_decoder = true;
  const std::string type = type_of(node, field, file);
  if (type == "Sequence") {
    const json members = array_field(node, "decoders", field, file);
    for (size_t i = 0; i < members.size(); ++i) {
      read_decoder(members[i], field + ".decoders[" + std::to_string(i) + "]");
    }
    return;
  }
  DecoderStep step;
  if (type == "Replace") {
    step.kind = DecoderStep::Kind::replace;
    step.pattern = read_string_pattern(node.value("pattern", json()), field + ".pattern");
    step.content = string_field(node, "content", field, file);
  } else if (type == "ByteFallback") {
    step.kind = DecoderStep::Kind::byte_fallback;
  } else if (type == "Fuse") {
    step.kind = DecoderStep::Kind::fuse;
  } else if (type == "Strip") {
    step.kind = DecoderStep::Kind::strip;
    const std::string content = string_field(node, "content", field, file);
    if (content.empty() || utf8::sequence_length(content, 0) != content.size()) {
      fail("field \"" + field + ".content\" must be one character");
    }
    step.strip_char = utf8::decode(content, 0, content.size());
    step.strip_start = count_field(node, "start", field, file);
    step.strip_stop = count_field(node, "stop", field, file);
  } else {
    fail("unsupported decoder type \"" + type + "\" in \"" + field +
         "\"; implemented: Sequence, Replace, ByteFallback, Fuse, Strip");
  }
  decoder.push_back(std::move(step));
}

void Tokenizer::Impl::read_vocab(JsonScanner& scanner) {
  scanner.expect('{');
  vocab_tokens.reserve(300000);
  std::string token;
  for (bool first = true; scanner.next_member('}', first); first = false) {
    scanner.read_string(token);
    scanner.expect(':');
    const int64_t id = scanner.read_integer();
    if (id < 0 || id >= (int64_t{1} << 26)) {
      fail("model.vocab: id " + std::to_string(id) + " of token \"" + token + "\" is out of range");
    }
    if (size_t(id) >= vocab_tokens.size()) {
      vocab_tokens.resize(size_t(id) + 1);
      vocab_present.resize(vocab_tokens.size(), false);
    }
    if (!utf8::is_valid(token)) {
      fail("model.vocab: token with id " + std::to_string(id) + " is not valid UTF-8");
    }
    if (vocab_present[id]) {
      fail("model.vocab: id " + std::to_string(id) + " is given to both \"" + vocab_tokens[id] +
           "\" and \"" + token + "\"");
    }
    vocab_tokens[id].swap(token);
    vocab_present[id] = true;
  }
  const int32_t duplicate = vocab.build(vocab_tokens, vocab_present);
  if (duplicate >= 0) {
    fail("model.vocab: token \"" + vocab_tokens[duplicate] + "\" appears twice");
  }
}

void Tokenizer::Impl::read_merges(JsonScanner& scanner) {
  scanner.expect('[');
  // SentencePiece-derived files have about two merges per vocabulary entry (Gemma: 515k for
  // 262k); the table grows if there are more.
  merges.reserve(vocab.size() * 2);
  std::string left;
  std::string right;
  std::string merged;
  int32_t rank = 0;
  const auto lookup = [&](const std::string& token) {
    const int32_t id = vocab.find(token);
    if (id < 0) {
      fail("model.merges[" + std::to_string(rank) + "]: token \"" + token +
           "\" is not in the vocabulary");
    }
    return id;
  };
  for (bool first = true; scanner.next_member(']', first); first = false) {
    if (scanner.peek() == '[') {
      // Array form: ["left", "right"].
      scanner.expect('[');
      scanner.read_string(left);
      scanner.expect(',');
      scanner.read_string(right);
      scanner.expect(']');
    } else {
      // String form: "left right", split at the one space.
      scanner.read_string(merged);
      const size_t space = merged.find(' ');
      if (space == std::string::npos || merged.find(' ', space + 1) != std::string::npos) {
        fail("model.merges[" + std::to_string(rank) + "]: \"" + merged +
             "\" is not two tokens separated by one space");
      }
      left.assign(merged, 0, space);
      right.assign(merged, space + 1);
    }
    merged = left;
    merged += right;
    merges.insert_or_assign(lookup(left), lookup(right), {rank, lookup(merged)});
    ++rank;
  }
}

void Tokenizer::Impl::read_model_options(const json& options) {
  const std::string type = options.contains("type") ? string_field(options, "type", "model", file)
                                                     : std::string("BPE");
  if (type != "BPE") fail("unsupported model type \"" + type + "\" in \"model.type\"; only BPE");
  if (options.contains("dropout") && !options["dropout"].is_null() &&
      options["dropout"] != json(0.0)) {
    fail("\"model.dropout\" is set; BPE dropout is random and not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!string_field(options, key, "model", file).empty()) {
      fail(std::string("\"model.") + key + "\" is not supported");
    }
  }
  unk_token = string_field(options, "unk_token", "model", file);
  has_unk = options.contains("unk_token") && !options["unk_token"].is_null();
  fuse_unk = bool_field(options, "fuse_unk", false, "model", file);
  byte_fallback = bool_field(options, "byte_fallback", false, "model", file);
  ignore_merges = bool_field(options, "ignore_merges", false, "model", file);
}

void Tokenizer::Impl::read_model(JsonScanner& scanner) {
  scanner.expect('{');
  json options = json::object();
  size_t merges_position = 0;
  bool has_vocab = false;
  std::string key;
  for (bool first = true; scanner.next_member('}', first); first = false) {
    scanner.read_string(key);
    scanner.expect(':');
    if (key == "vocab") {
      read_vocab(scanner);
      has_vocab = true;
    } else if (key == "merges") {
      // Merges name tokens of the vocabulary, which may come later in the object.
      merges_position = scanner.position();
      scanner.skip_value();
    } else {
      options[key] = scanner.parse_value("model." + key);
    }
  }
  if (!has_vocab) fail("missing field \"model.vocab\"");
  read_model_options(options);
  if (merges_position != 0) {
    const size_t end = scanner.position();
    scanner.set_position(merges_position);
    read_merges(scanner);
    scanner.set_position(end);
  }
}

void Tokenizer::Impl::read_added_tokens(const json& list) {
  if (list.is_null()) return;
  if (!list.is_array()) fail("field \"added_tokens\" must be an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& node = list[i];
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    if (!node.is_object() || !node.contains("id") || !node["id"].is_number_unsigned() ||
        !node.contains("content") || !node["content"].is_string()) {
      fail("field \"" + field + "\" needs an unsigned \"id\" and a string \"content\"");
    }
    AddedToken token;
    const uint64_t id = node["id"].get<uint64_t>();
    if (id >= (uint64_t{1} << 26)) fail("field \"" + field + ".id\" is out of range");
    token.id = int32_t(id);
    token.content = node["content"].get<std::string>();
    token.single_word = bool_field(node, "single_word", false, field, file);
    token.lstrip = bool_field(node, "lstrip", false, field, file);
    token.rstrip = bool_field(node, "rstrip", false, field, file);
    token.normalized = bool_field(node, "normalized", true, field, file);
    token.special = bool_field(node, "special", false, field, file);
    // `tokenizers` ignores added tokens with empty content.
    if (token.content.empty()) continue;
    added_tokens.push_back(std::move(token));
  }
}

// Gives each added token the id `tokenizers` gives it: the id of the same text among earlier
// added tokens or in the vocabulary, else the next id after the vocabulary. The "id" written in
// the file only matters for a warning, as in `tokenizers`.
void Tokenizer::Impl::assign_added_token_ids() {
  std::stable_sort(added_tokens.begin(), added_tokens.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  const auto model_count = int32_t(vocab.size());
  int32_t max_added_id = -1;
  for (AddedToken& token : added_tokens) {
    int32_t id = -1;
    if (const auto it = added_ids.find(token.content); it != added_ids.end()) {
      id = it->second;
    } else if (const int32_t found = vocab.find(token.content); found >= 0) {
      id = found;
    } else if (max_added_id < 0) {
      id = model_count;
    } else {
      id = max_added_id >= model_count || model_count == 0 ? max_added_id + 1 : model_count;
    }
    if (id != token.id) {
      MXG_LOG_WARN("%s: added token \"%s\" has id %d in the file but gets id %d, as in "
                   "Hugging Face tokenizers", file.c_str(), token.content.c_str(), token.id, id);
      token.id = id;
    }
    max_added_id = std::max(max_added_id, id);
    added_ids.insert_or_assign(token.content, id);
  }
}

void Tokenizer::Impl::build_tables() {
  assign_added_token_ids();
  size_t id_count = vocab_tokens.size();
  for (const AddedToken& token : added_tokens) id_count = std::max(id_count, size_t(token.id) + 1);
  id_text.assign(id_count, nullptr);
  for (size_t id = 0; id < vocab_tokens.size(); ++id) {
    if (vocab_present[id]) id_text[id] = &vocab_tokens[id];
  }
  for (const AddedToken& token : added_tokens) id_text[token.id] = &token.content;

  special.assign(id_count, false);
  for (const AddedToken& token : added_tokens) {
    if (!token.special) continue;
    special[token.id] = true;
    // Decoding skips by token text, so a vocabulary id with the same text is special too.
    if (const int32_t id = vocab.find(token.content); id >= 0) special[id] = true;
  }

  // `tokenizers` puts special tokens before the others in its automaton; with LeftmostLongest
  // the order only decides between identical patterns.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < added_tokens.size(); ++i) {
      const AddedToken& token = added_tokens[i];
      if (token.special != (pass == 0)) continue;
      if (!token.normalized) {
        raw_trie.insert(token.content, int32_t(i));
        continue;
      }
      std::string pattern = token.content;
      normalize(pattern);
      normalized_trie.insert(pattern, int32_t(i));
    }
  }

  byte_ids.fill(-1);
  char name[8];
  for (int byte = 0; byte < 256; ++byte) {
    std::snprintf(name, sizeof(name), "<0x%02X>", byte);
    byte_ids[byte] = vocab.find(std::string_view(name));
  }

  const auto find_id = [&](std::string_view text) -> int32_t {
    if (const auto it = added_ids.find(text); it != added_ids.end()) return it->second;
    return vocab.find(text);
  };
  bos = find_id("<bos>");
  eos = find_id("<eos>");
}

void Tokenizer::Impl::load(std::string_view text) {
  JsonScanner scanner(text, file);
  json added_list;
  bool has_model = false;
  std::string key;
  scanner.expect('{');
  for (bool first = true; scanner.next_member('}', first); first = false) {
    scanner.read_string(key);
    scanner.expect(':');
    if (key == "model") {
      read_model(scanner);
      has_model = true;
    } else if (key == "added_tokens") {
      added_list = scanner.parse_value(key);
    } else if (key == "normalizer") {
      read_normalizer(scanner.parse_value(key), key);
    } else if (key == "pre_tokenizer") {
      read_pre_tokenizer(scanner.parse_value(key), key);
    } else if (key == "decoder") {
      read_decoder(scanner.parse_value(key), key);
    } else if (key == "truncation" || key == "padding") {
      if (!scanner.parse_value(key).is_null()) {
        fail("field \"" + key + "\" is set; truncation and padding are not supported");
      }
    } else {
      // version, post_processor (BOS is added by encode's add_bos), and unknown keys.
      scanner.skip_value();
    }
  }
  if (!scanner.at_end()) scanner.fail("unexpected text after the top-level object");
  if (!has_model) fail("missing field \"model\"");

  read_added_tokens(added_list);
  build_tables();
}

// ---------------------------------------------------------------------------------------------
// Encoding.

void Tokenizer::Impl::normalize(std::string& text) const {
  for (const NormalizerStep& step : normalizer) {
    switch (step.kind) {
      case NormalizerStep::Kind::replace:
        replace_all(text, step.pattern, step.content);
        break;
      case NormalizerStep::Kind::prepend:
        if (!text.empty()) text.insert(0, step.content);
        break;
      case NormalizerStep::Kind::strip: {
        const size_t end = step.strip_right ? trailing_whitespace_start(text) : text.size();
        const size_t begin =
            step.strip_left ? leading_whitespace_length(std::string_view(text).substr(0, end)) : 0;
        text = text.substr(begin, end - begin);
        break;
      }
    }
  }
}

std::vector<Segment> Tokenizer::Impl::split_on_added_tokens(std::string_view text,
                                                            const AddedTokenTrie& trie,
                                                            bool parse_special) const {
  std::vector<Segment> segments;
  size_t start_offset = 0;
  for (size_t pos = 0; pos < text.size() && !trie.empty();) {
    const auto [length, index] = trie.longest_match(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = added_tokens[index];
    size_t start = pos;
    size_t stop = pos + length;
    // The automaton resumes after the match even when the match is then dropped.
    pos = stop;
    if (token.special && !parse_special) continue;
    if (token.single_word &&
        ((start > 0 && ends_with_word(text.substr(0, start))) ||
         (stop < text.size() && starts_with_word(text.substr(stop))))) {
      continue;
    }
    if (token.lstrip) {
      start = std::max(trailing_whitespace_start(text.substr(0, start)), start_offset);
    }
    if (token.rstrip) stop += leading_whitespace_length(text.substr(stop));
    if (start_offset < start) segments.push_back({start_offset, start, -1});
    segments.push_back({start, stop, token.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) segments.push_back({start_offset, text.size(), -1});
  return segments;
}

void Tokenizer::Impl::pre_tokenize(std::string_view text,
                                   std::vector<std::string_view>& words) const {
  words.clear();
  if (!text.empty()) words.push_back(text);
  std::vector<std::string_view> next;
  std::vector<std::pair<std::string_view, bool>> pieces;  // (text, is_match)
  for (const SplitStep& step : pre_tokenizer) {
    next.clear();
    for (const std::string_view word : words) {
      // Cut the word into alternating non-matches and matches of the pattern.
      pieces.clear();
      size_t pos = 0;
      if (!step.pattern.empty()) {
        for (size_t hit; (hit = word.find(step.pattern, pos)) != std::string_view::npos;
             pos = hit + step.pattern.size()) {
          if (hit > pos) pieces.emplace_back(word.substr(pos, hit - pos), step.invert);
          pieces.emplace_back(word.substr(hit, step.pattern.size()), !step.invert);
        }
      }
      if (pos < word.size()) pieces.emplace_back(word.substr(pos), step.invert);

      // Apply the delimiter behavior; pieces are adjacent views, so merging widens a view.
      const auto widen = [](std::string_view a, std::string_view b) {
        return std::string_view(a.data(), size_t(b.data() + b.size() - a.data()));
      };
      const size_t first_new = next.size();
      bool previous_match = false;
      switch (step.behavior) {
        case SplitBehavior::removed:
          for (const auto& [piece, is_match] : pieces) {
            if (!is_match) next.push_back(piece);
          }
          break;
        case SplitBehavior::isolated:
          for (const auto& piece : pieces) next.push_back(piece.first);
          break;
        case SplitBehavior::merged_with_previous:
          for (const auto& [piece, is_match] : pieces) {
            if (is_match && !previous_match && next.size() > first_new) {
              next.back() = widen(next.back(), piece);
            } else {
              next.push_back(piece);
            }
            previous_match = is_match;
          }
          break;
        case SplitBehavior::merged_with_next: {
          std::vector<std::string_view> reversed;
          for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
            if (it->second && !previous_match && !reversed.empty()) {
              reversed.back() = widen(it->first, reversed.back());
            } else {
              reversed.push_back(it->first);
            }
            previous_match = it->second;
          }
          next.insert(next.end(), reversed.rbegin(), reversed.rend());
          break;
        }
        case SplitBehavior::contiguous:
          for (const auto& [piece, is_match] : pieces) {
            if (is_match && previous_match && next.size() > first_new) {
              next.back() = widen(next.back(), piece);
            } else {
              next.push_back(piece);
            }
            previous_match = is_match;
          }
          break;
      }
    }
    words.swap(next);
  }
}

void Tokenizer::Impl::encode_word(std::string_view word, std::vector<int32_t>& ids) const {
  if (ignore_merges) {
    if (const int32_t id = vocab.find(word); id >= 0) {
      ids.push_back(id);
      return;
    }
  }

  // One symbol per character: its vocabulary id, else its bytes' <0xXX> ids, else <unk>.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t length;  // bytes; 0 once merged into the symbol on its left
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto add = [&symbols](int32_t id, size_t length) {
    const auto index = int32_t(symbols.size());
    symbols.push_back({id, index - 1, index + 1, uint32_t(length)});
  };
  int32_t pending_unk_length = 0;  // fused <unk> bytes not yet added
  const auto flush_unk = [&]() {
    if (pending_unk_length == 0) return;
    const int32_t unk_id = vocab.find(unk_token);
    if (unk_id < 0) fail("encode: unk_token \"" + unk_token + "\" is not in the vocabulary");
    add(unk_id, size_t(pending_unk_length));
    pending_unk_length = 0;
  };

  for (size_t pos = 0; pos < word.size();) {
    size_t length = utf8::sequence_length(word, pos);
    if (length == 0) length = 1;
    const std::string_view character = word.substr(pos, length);
    pos += length;
    if (const int32_t id = vocab.find(character); id >= 0) {
      flush_unk();
      add(id, length);
      continue;
    }
    if (byte_fallback && std::all_of(character.begin(), character.end(), [this](char c) {
          return byte_ids[static_cast<unsigned char>(c)] >= 0;
        })) {
      // NOTE: a pending <unk> is not flushed first, so it lands after these bytes; this is what
      // `tokenizers` 0.23 does.
      for (const char c : character) add(byte_ids[static_cast<unsigned char>(c)], 1);
      continue;
    }
    if (!has_unk) continue;  // without an unk_token the character is dropped
    if (pending_unk_length > 0 && !fuse_unk) flush_unk();
    pending_unk_length += int32_t(length);
  }
  flush_unk();
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // Apply merges lowest rank first, leftmost first among equal ranks. Queue entries go stale
  // when a neighbor merges; they are checked against the current pair when popped.
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator<(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  std::priority_queue<Candidate> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const auto* merge = merges.find(symbols[i].id, symbols[i + 1].id)) {
      queue.push({merge->rank, int32_t(i), merge->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& current = symbols[top.pos];
    if (current.length == 0 || current.next < 0) continue;
    Symbol& right = symbols[current.next];
    const auto* merge = merges.find(current.id, right.id);
    if (merge == nullptr || merge->new_id != top.new_id) continue;

    current.id = top.new_id;
    current.length += right.length;
    right.length = 0;
    current.next = right.next;
    if (current.next >= 0) symbols[current.next].prev = top.pos;

    if (current.prev >= 0) {
      if (const auto* left = merges.find(symbols[current.prev].id, current.id)) {
        queue.push({left->rank, current.prev, left->new_id});
      }
    }
    if (current.next >= 0) {
      if (const auto* next = merges.find(current.id, symbols[current.next].id)) {
        queue.push({next->rank, top.pos, next->new_id});
      }
    }
  }
  for (const Symbol& symbol : symbols) {
    if (symbol.length > 0) ids.push_back(symbol.id);
  }
}

void Tokenizer::Impl::encode_plain(std::string_view text, bool parse_special,
                                   std::vector<int32_t>& ids) const {
  std::string normalized(text);
  normalize(normalized);
  std::vector<std::string_view> words;
  for (const Segment& segment : split_on_added_tokens(normalized, normalized_trie, parse_special)) {
    if (segment.token_id >= 0) {
      ids.push_back(segment.token_id);
      continue;
    }
    const std::string_view piece =
        std::string_view(normalized).substr(segment.begin, segment.end - segment.begin);
    pre_tokenize(piece, words);
    for (const std::string_view word : words) {
      if (!word.empty()) encode_word(word, ids);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding.

std::vector<std::string> Tokenizer::Impl::run_decoder(std::vector<std::string> tokens) const {
  for (const DecoderStep& step : decoder) {
    switch (step.kind) {
      case DecoderStep::Kind::replace:
        for (std::string& token : tokens) replace_all(token, step.pattern, step.content);
        break;
      case DecoderStep::Kind::fuse: {
        std::string fused;
        for (const std::string& token : tokens) fused += token;
        tokens.assign(1, std::move(fused));
        break;
      }
      case DecoderStep::Kind::strip:
        for (std::string& token : tokens) {
          // Remove up to strip_start leading and strip_stop trailing copies of strip_char.
          std::string encoded;
          utf8::append(encoded, step.strip_char);
          size_t begin = 0;
          for (size_t i = 0; i < step.strip_start; ++i) {
            if (token.compare(begin, encoded.size(), encoded) != 0) break;
            begin += encoded.size();
          }
          size_t end = token.size();
          for (size_t i = 0; i < step.strip_stop && end >= begin + encoded.size() &&
                             token.compare(end - encoded.size(), encoded.size(), encoded) == 0;
               ++i) {
            end -= encoded.size();
          }
          token = token.substr(begin, end - begin);
        }
        break;
      case DecoderStep::Kind::byte_fallback: {
        // A run of <0xXX> tokens becomes one token when its bytes are valid UTF-8; otherwise
        // every byte of the run becomes U+FFFD, even bytes that formed whole characters.
        std::vector<std::string> out;
        out.reserve(tokens.size());
        std::string bytes;
        const auto flush = [&]() {
          if (bytes.empty()) return;
          if (utf8::is_valid(bytes)) {
            out.push_back(bytes);
          } else {
            for (size_t i = 0; i < bytes.size(); ++i) out.emplace_back(utf8::kReplacementUtf8);
          }
          bytes.clear();
        };
        for (std::string& token : tokens) {
          unsigned char byte = 0;
          if (parse_byte_token(token, byte)) {
            bytes.push_back(static_cast<char>(byte));
            continue;
          }
          flush();
          out.push_back(std::move(token));
        }
        flush();
        tokens = std::move(out);
        break;
      }
    }
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Public interface.

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  auto impl = std::make_unique<Impl>();
  impl->file = tokenizer_json.string();
  const MappedFile mapped(tokenizer_json);
  try {
    impl->load(std::string_view(reinterpret_cast<const char*>(mapped.data()), mapped.size()));
  } catch (const json::exception& error) {
    // A value of the wrong type in a field that has no check of its own.
    throw std::runtime_error(impl->file + ": invalid tokenizer.json: " + error.what());
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos,
                                       bool parse_special) const {
  std::vector<int32_t> ids;
  if (add_bos) {
    if (impl_->bos < 0) {
      throw std::invalid_argument(impl_->file +
                                  ": encode with add_bos, but the vocabulary has no <bos> token");
    }
    ids.push_back(impl_->bos);
  }

  // `tokenizers` takes Rust strings, so ill-formed input is first made valid the way Python's
  // bytes.decode(errors="replace") does.
  std::string replaced;
  if (!utf8::is_valid(text)) {
    replaced = utf8::replace_invalid(text);
    text = replaced;
  }

  const auto segments = impl_->split_on_added_tokens(text, impl_->raw_trie, parse_special);
  for (const Segment& segment : segments) {
    if (segment.token_id >= 0) {
      ids.push_back(segment.token_id);
    } else {
      impl_->encode_plain(text.substr(segment.begin, segment.end - segment.begin), parse_special,
                          ids);
    }
  }
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    const std::string& text = token_text(id);
    if (skip_special && impl_->special[id]) continue;
    tokens.push_back(text);
  }
  if (!impl_->has_decoder) {
    // `tokenizers` joins tokens with spaces when the file has no decoder.
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  std::string text;
  for (const std::string& piece : impl_->run_decoder(std::move(tokens))) text += piece;
  return text;
}

int32_t Tokenizer::vocab_size() const { return int32_t(impl_->id_text.size()); }

int32_t Tokenizer::token_id(std::string_view token_text) const {
  if (const auto it = impl_->added_ids.find(token_text); it != impl_->added_ids.end()) {
    return it->second;
  }
  return impl_->vocab.find(token_text);
}

const std::string& Tokenizer::token_text(int32_t id) const {
  if (id < 0 || size_t(id) >= impl_->id_text.size() || impl_->id_text[id] == nullptr) {
    throw std::out_of_range("token id " + std::to_string(id) + " is not in the vocabulary of " +
                            impl_->file + " (" + std::to_string(impl_->id_text.size()) + " ids)");
  }
  return *impl_->id_text[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->special.size() && impl_->special[id];
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }

// ---------------------------------------------------------------------------------------------
// Streaming. Like DecodeStream of `tokenizers`: the window keeps the ids of the last emitted
// piece as context, so decoders that look at neighbors (Strip on the first token) stay right.

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(&tokenizer), skip_special_(skip_special) {}

std::string StreamingDecoder::push(int32_t id) {
  tokenizer_->token_text(id);  // throws std::out_of_range before the id joins the window
  ids_.push_back(id);
  const std::string text = tokenizer_->decode(ids_, skip_special_);
  // A trailing U+FFFD may be an incomplete byte-fallback character that the next id completes.
  if (text.size() <= prefix_.size() || ends_with_replacement_char(text)) return {};

  std::string piece;
  if (text.compare(0, prefix_.size(), prefix_) == 0) {
    piece = text.substr(prefix_.size());
  } else {
    // The new bytes made the previous byte run invalid, which turns already emitted characters
    // into U+FFFD; emit the decoding of the new ids alone instead.
    piece = tokenizer_->decode(std::span<const int32_t>(ids_).subspan(prefix_ids_), skip_special_);
  }
  ids_.erase(ids_.begin(), ids_.begin() + std::ptrdiff_t(prefix_ids_));
  prefix_ = tokenizer_->decode(ids_, skip_special_);
  prefix_ids_ = ids_.size();
  return piece;
}

std::string StreamingDecoder::finish() {
  std::string piece;
  const std::string text = tokenizer_->decode(ids_, skip_special_);
  if (text.compare(0, prefix_.size(), prefix_) == 0) {
    piece = text.substr(std::min(prefix_.size(), text.size()));
  } else {
    piece = tokenizer_->decode(std::span<const int32_t>(ids_).subspan(prefix_ids_), skip_special_);
  }
  ids_.clear();
  prefix_.clear();
  prefix_ids_ = 0;
  return piece;
}

}  // namespace mxgemma
