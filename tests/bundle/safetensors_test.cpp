#include "bundle/safetensors.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "bundle_test_util.h"

namespace mxgemma {
namespace {

using testing::SafetensorsWriter;
using testing::contains;
using testing::ScratchDir;
using testing::safetensors_bytes;
using testing::write_file;

// Runs `action`, expecting a std::runtime_error whose message contains every part.
template <typename Action>
void expect_error(Action action, std::initializer_list<std::string> parts) {
  try {
    action();
    FAIL() << "no exception";
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const auto& part : parts) EXPECT_TRUE(contains(message, part));
  }
}

TEST(Safetensors, ReadsDtypesShapesAndMetadata) {
  ScratchDir scratch;
  SafetensorsWriter writer;
  writer.add("a.f32", "F32", {2, 3});
  writer.add("b.f16", "F16", {4});
  writer.add("c.bf16", "BF16", {1, 2});
  writer.add("d.u32", "U32", {2, 2});
  writer.add("e.u8", "U8", {3});
  writer.add("f.e8m0", "F8_E8M0", {2, 1});
  writer.add("g.scalar", "BF16", {});
  const auto path = scratch.path() / "x.safetensors";
  writer.write(path);

  SafetensorsFile file(path);
  ASSERT_EQ(file.tensors().size(), 7u);
  const Tensor& a = file.tensors().at("a.f32");
  EXPECT_EQ(a.dtype, DType::f32);
  EXPECT_EQ(a.shape_string(), "[2, 3]");
  EXPECT_EQ(a.nbytes, 24u);
  EXPECT_EQ(a.numel(), 6);
  EXPECT_EQ(a.file, "x.safetensors");
  EXPECT_EQ(file.tensors().at("f.e8m0").dtype, DType::u8);
  EXPECT_EQ(file.tensors().at("g.scalar").numel(), 1);
  EXPECT_EQ(file.tensors().at("g.scalar").shape_string(), "[]");
  EXPECT_EQ(file.metadata().at("format"), "mlx");

  // The data block holds 59 bytes; d.u32 starts at offset 24 + 8 + 4 = 36 inside it.
  const std::string bytes = testing::read_file(path);
  const Tensor& d = file.tensors().at("d.u32");
  EXPECT_EQ(std::memcmp(d.data, bytes.data() + bytes.size() - 59 + 36, 16), 0);
}

TEST(Safetensors, AcceptsNullMetadata) {
  ScratchDir scratch;
  const std::string header =
      R"({"__metadata__":null,"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  write_file(scratch.path() / "n.safetensors", safetensors_bytes(header.size(), header, "ab"));
  SafetensorsFile file(scratch.path() / "n.safetensors");
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_EQ(file.tensors().at("x").nbytes, 2u);
}

TEST(Safetensors, CopiesMisalignedTensors) {
  ScratchDir scratch;
  // The header padded to 120 bytes puts the data block at file offset 128, so the U32 at data
  // offset 1 sits at 129, misaligned inside the page-aligned mapping.
  std::string header = R"({"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("w":{"dtype":"U32","shape":[1],"data_offsets":[1,5]}})";
  ASSERT_LE(header.size(), 120u);
  header.resize(120, ' ');
  const std::string data = std::string("\x07", 1) + std::string("\x01\x02\x03\x04", 4);
  write_file(scratch.path() / "m.safetensors", safetensors_bytes(header.size(), header, data));
  SafetensorsFile file(scratch.path() / "m.safetensors");
  const Tensor& w = file.tensors().at("w");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data) % 4, 0u);
  uint32_t value;
  std::memcpy(&value, w.data, 4);
  EXPECT_EQ(value, 0x04030201u);
}

TEST(SafetensorsBadInput, FileShorterThanLength) {
  ScratchDir scratch;
  write_file(scratch.path() / "s.safetensors", "abc");
  expect_error([&] { SafetensorsFile file(scratch.path() / "s.safetensors"); },
               {"s.safetensors: header:", "too short"});
}

TEST(SafetensorsBadInput, HugeHeaderLength) {
  ScratchDir scratch;
  write_file(scratch.path() / "h.safetensors", safetensors_bytes(1ull << 40, "{}", ""));
  expect_error([&] { SafetensorsFile file(scratch.path() / "h.safetensors"); },
               {"h.safetensors: header:", "exceeds"});
}

TEST(SafetensorsBadInput, HeaderLengthPastEnd) {
  ScratchDir scratch;
  write_file(scratch.path() / "p.safetensors", safetensors_bytes(500, "{}", ""));
  expect_error([&] { SafetensorsFile file(scratch.path() / "p.safetensors"); },
               {"p.safetensors: header:", "runs past the end"});
}

TEST(SafetensorsBadInput, NonJsonHeader) {
  ScratchDir scratch;
  const std::string header = "{not json";
  write_file(scratch.path() / "j.safetensors", safetensors_bytes(header.size(), header, ""));
  expect_error([&] { SafetensorsFile file(scratch.path() / "j.safetensors"); },
               {"j.safetensors: header:", "not valid JSON"});
}

TEST(SafetensorsBadInput, HeaderNotAnObject) {
  ScratchDir scratch;
  const std::string header = "[1, 2]";
  write_file(scratch.path() / "o.safetensors", safetensors_bytes(header.size(), header, ""));
  expect_error([&] { SafetensorsFile file(scratch.path() / "o.safetensors"); },
               {"o.safetensors: header:", "expected a JSON object"});
}

struct BadEntryCase {
  const char* label;
  std::string header;
  std::string data;
  std::string tensor;
  std::string problem;
};

class SafetensorsBadEntry : public ::testing::TestWithParam<BadEntryCase> {};

TEST_P(SafetensorsBadEntry, NamesFileAndTensor) {
  ScratchDir scratch;
  const BadEntryCase& bad = GetParam();
  const auto path = scratch.path() / "bad.safetensors";
  write_file(path, safetensors_bytes(bad.header.size(), bad.header, bad.data));
  expect_error([&] { SafetensorsFile file(path); },
               {"bad.safetensors: " + bad.tensor, bad.problem});
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SafetensorsBadEntry,
    ::testing::Values(
        BadEntryCase{"offsets_past_end",
                     R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", "abcd", "w",
                     "run past the end of the data"},
        BadEntryCase{"overlapping",
                     R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                     R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                     "abcdef", "b", "inside a [0, 4]"},
        BadEntryCase{"byte_count",
                     R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd", "w",
                     "needs 8"},
        BadEntryCase{"unknown_dtype",
                     R"({"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", "abcdefgh", "w",
                     "unsupported dtype I64"},
        BadEntryCase{"dtype_not_string",
                     R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "abcd", "w",
                     "dtype: expected a string"},
        BadEntryCase{"negative_dim",
                     R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "a", "w",
                     "expected a non-negative integer"},
        BadEntryCase{"shape_not_list",
                     R"({"w":{"dtype":"U8","shape":"4","data_offsets":[0,4]}})", "abcd", "w",
                     "shape: expected a list"},
        BadEntryCase{"offsets_reversed",
                     R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", "abcd", "w",
                     "end before begin"},
        BadEntryCase{"offsets_one_value",
                     R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "a", "w",
                     "expected [begin, end]"},
        BadEntryCase{"missing_shape", R"({"w":{"dtype":"U8","data_offsets":[0,1]}})", "a", "w",
                     "missing field shape"},
        BadEntryCase{"entry_not_object", R"({"w":[1,2]})", "", "w", "expected an object"},
        BadEntryCase{"shape_overflow",
                     R"({"w":{"dtype":"U32","shape":[4294967296,4294967296],)"
                     R"("data_offsets":[0,4]}})",
                     "abcd", "w", "too large"},
        BadEntryCase{"metadata_not_string",
                     R"({"__metadata__":{"format":3}})", "", "__metadata__.format",
                     "expected a string"}),
    [](const ::testing::TestParamInfo<BadEntryCase>& info) { return info.param.label; });

TEST(TensorStoreBadInput, NoWeightsAtAll) {
  ScratchDir scratch;
  expect_error([&] { TensorStore::open(scratch.path()); },
               {scratch.path().string(),
                "no model.safetensors.index.json and no model.safetensors"});
}

TEST(TensorStore, SingleFileWithoutIndex) {
  ScratchDir scratch;
  SafetensorsWriter writer;
  writer.add("x", "F16", {2});
  writer.write(scratch.path() / "model.safetensors");
  const TensorStore store = TensorStore::open(scratch.path());
  EXPECT_EQ(store.num_shards(), 1u);
  EXPECT_TRUE(store.contains("x"));
  EXPECT_EQ(store.get("x").shape_string(), "[2]");
  expect_error([&] { store.get("y"); }, {"missing tensor y"});
}

}  // namespace
}  // namespace mxgemma
