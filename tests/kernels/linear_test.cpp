#include "kernels/linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "test_weights.h"

namespace mxgemma {
namespace {

using testing::TestWeights;

// Every level this CPU runs, scalar included: the scalar table still goes through the threaded
// prefill tiling, which the per-token reference below does not use.
std::vector<const KernelTable*> runnable_tables() {
  std::vector<const KernelTable*> tables;
  for (const char* isa : {"scalar", "avx2", "avx512", "neon"}) {
    try {
      tables.push_back(&kernel_table_for(isa));
    } catch (const std::runtime_error&) {
      // Not available on this CPU or build.
    }
  }
  return tables;
}

// The scalar reference, one token at a time.
std::vector<float> reference_matmul(const WeightMatrix& w, const float* x, int64_t num_tokens) {
  std::vector<float> y(size_t(num_tokens * w.rows));
  for (int64_t t = 0; t < num_tokens; ++t) {
    scalar_kernel_table().matvec_rows(w, x + t * w.cols, nullptr, y.data() + t * w.rows, 0, w.rows);
  }
  return y;
}

// Checks y against expected with a bound from the summation order: |diff| <= 1e-5 sum|w x|, plus a
// floor for sums of subnormals. Where expected is +-inf or NaN, y must be +-inf or NaN too: the
// decode path scales each group's sum (+-inf, as MLX's quantized_matmul returns), while prefill
// multiplies dequantized weights, where 0 * inf is NaN.
void expect_close(const TestWeights& t, const float* x, int64_t num_tokens,
                  const std::vector<float>& expected, const float* y, const std::string& label) {
  const WeightMatrix& w = t.w;
  int failures = 0;
  for (int64_t tok = 0; tok < num_tokens && failures < 5; ++tok) {
    for (int64_t r = 0; r < w.rows && failures < 5; ++r) {
      const float e = expected[size_t(tok * w.rows + r)];
      const float a = y[tok * w.rows + r];
      if (!std::isfinite(e)) {
        if (std::isfinite(a)) {
          ++failures;
          ADD_FAILURE() << label << " token " << tok << " row " << r << ": expected " << e
                        << ", got " << a;
        }
        continue;
      }
      double bound = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) {
        bound +=
            double(t.abs_terms[size_t(r * w.cols + c)]) * std::fabs(double(x[tok * w.cols + c]));
      }
      const double tolerance = 1e-5 * bound + 1e-42;
      if (!(std::fabs(double(a) - double(e)) <= tolerance)) {
        ++failures;
        ADD_FAILURE() << label << " token " << tok << " row " << r << ": expected " << e << ", got "
                      << a << " (tolerance " << tolerance << ")";
      }
    }
  }
}

// Runs every runnable table on t for each token count, with x and y one float off alignment.
void check_all_tables(const TestWeights& t, const std::vector<int64_t>& token_counts,
                      std::mt19937& rng, ThreadPool& pool, const std::string& label) {
  const WeightMatrix& w = t.w;
  for (int64_t num_tokens : token_counts) {
    std::vector<float> x_storage = testing::random_floats(num_tokens * w.cols + 1, rng);
    const float* x = x_storage.data() + 1;
    const std::vector<float> expected = reference_matmul(w, x, num_tokens);
    for (const KernelTable* table : runnable_tables()) {
      std::vector<float> y_storage(size_t(num_tokens * w.rows + 1), -7.0f);
      float* y = y_storage.data() + 1;
      matmul_with_table(*table, w, x, num_tokens, y, pool);
      expect_close(t, x, num_tokens, expected, y,
                   label + " isa " + table->name + " rows " + std::to_string(w.rows) + " cols " +
                       std::to_string(w.cols) + " tokens " + std::to_string(num_tokens));
      EXPECT_EQ(y_storage[0], -7.0f) << "matmul wrote before y";
    }
  }
}

const std::vector<int64_t> kRowCounts = {1, 7, 33, 100};
const std::vector<int64_t> kTokenCounts = {1, 2, 3, 5, 17, 64};

TEST(ScalarReference, HandComputedMxfp4) {
  // Group 0: elements 0..15 take codes 0..15 and 16..31 code 0, scale byte 128 (2.0).
  // Group 1: every code 7 (6.0), scale byte 126 (0.5).
  const std::vector<uint32_t> words = {0x76543210u, 0xfedcba98u, 0u,          0u,
                                       0x77777777u, 0x77777777u, 0x77777777u, 0x77777777u};
  const std::vector<uint8_t> scales = {128, 126};
  WeightMatrix w;
  w.format = WeightFormat::mxfp4;
  w.rows = 1;
  w.cols = 64;
  w.bits = 4;
  w.group_size = 32;
  w.data = words.data();
  w.e8m0_scales = scales.data();

  // x = 1 on elements 0..7 and 0.25 on group 1: 2 * (0 + .5 + 1 + 1.5 + 2 + 3 + 4 + 6) +
  // 0.5 * 32 * 6 * 0.25 = 36 + 24.
  std::vector<float> x(64, 0.0f);
  for (int c = 0; c < 8; ++c) x[size_t(c)] = 1.0f;
  for (int c = 32; c < 64; ++c) x[size_t(c)] = 0.25f;
  float y = 0.0f;
  scalar_kernel_table().matvec_rows(w, x.data(), nullptr, &y, 0, 1);
  EXPECT_EQ(y, 60.0f);

  std::vector<float> row(64);
  scalar_kernel_table().dequantize_segment(w, 0, 0, 64, row.data());
  const float expected_group0[16] = {0, 1, 2, 3, 4, 6, 8, 12, -0.0f, -1, -2, -3, -4, -6, -8, -12};
  for (int c = 0; c < 16; ++c) EXPECT_EQ(row[size_t(c)], expected_group0[c]) << "element " << c;
  EXPECT_TRUE(std::signbit(row[8])) << "code 8 is negative zero";
  for (int c = 16; c < 32; ++c) EXPECT_EQ(row[size_t(c)], 0.0f);
  for (int c = 32; c < 64; ++c) EXPECT_EQ(row[size_t(c)], 3.0f);
}

TEST(ScalarReference, HandComputedAffine) {
  // 4 bits: element j has code j % 16, scale 0.5, bias -1: sum over j < 32 of 0.5 (j % 16) - 1
  // = 88.
  std::vector<uint32_t> codes4(32);
  for (uint32_t j = 0; j < 32; ++j) codes4[j] = j % 16;
  const std::vector<uint32_t> words4 = testing::pack_codes(codes4, 4);
  const std::vector<uint16_t> scale4 = {float_to_fp16(0.5f)}, bias4 = {float_to_fp16(-1.0f)};
  WeightMatrix w;
  w.format = WeightFormat::affine;
  w.rows = 1;
  w.cols = 32;
  w.bits = 4;
  w.group_size = 32;
  w.data = words4.data();
  w.affine_scales = scale4.data();
  w.affine_biases = bias4.data();
  const std::vector<float> ones(32, 1.0f);
  float y = 0.0f;
  scalar_kernel_table().matvec_rows(w, ones.data(), nullptr, &y, 0, 1);
  EXPECT_EQ(y, 88.0f);
  EXPECT_EQ(words4[0], 0x76543210u);

  // 8 bits, bf16 scale: code j, scale 0.25, bias 1: 0.25 * 496 + 32 = 156.
  std::vector<uint32_t> codes8(32);
  for (uint32_t j = 0; j < 32; ++j) codes8[j] = j;
  const std::vector<uint32_t> words8 = testing::pack_codes(codes8, 8);
  const std::vector<uint16_t> scale8 = {float_to_bf16(0.25f)}, bias8 = {float_to_bf16(1.0f)};
  w.bits = 8;
  w.data = words8.data();
  w.affine_scales = scale8.data();
  w.affine_biases = bias8.data();
  w.affine_scale_type = ScaleType::bf16;
  scalar_kernel_table().matvec_rows(w, ones.data(), nullptr, &y, 0, 1);
  EXPECT_EQ(y, 156.0f);
  EXPECT_EQ(words8[0], 0x03020100u);
}

TEST(ScalarReference, MatchesDequantizeThenDense) {
  std::mt19937 rng(1);
  std::vector<TestWeights> cases;
  cases.push_back(testing::make_dense(WeightFormat::f32, 9, 96, rng));
  cases.push_back(testing::make_dense(WeightFormat::f16, 9, 96, rng));
  cases.push_back(testing::make_dense(WeightFormat::bf16, 9, 96, rng));
  cases.push_back(testing::make_mxfp4(9, 96, rng));
  cases.push_back(testing::make_affine(9, 128, 4, 64, ScaleType::f16, rng));
  cases.push_back(testing::make_affine(9, 128, 8, 128, ScaleType::bf16, rng));
  for (const TestWeights& t : cases) {
    const WeightMatrix& w = t.w;
    const std::vector<float> x = testing::random_floats(w.cols, rng);
    std::vector<float> expected(size_t(w.rows));
    std::vector<float> row(size_t(w.cols));
    for (int64_t r = 0; r < w.rows; ++r) {
      scalar_kernel_table().dequantize_segment(w, r, 0, w.cols, row.data());
      double sum = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) sum += double(row[size_t(c)]) * double(x[size_t(c)]);
      expected[size_t(r)] = float(sum);
    }
    std::vector<float> y(size_t(w.rows));
    scalar_kernel_table().matvec_rows(w, x.data(), nullptr, y.data(), 0, w.rows);
    expect_close(t, x.data(), 1, expected, y.data(), "format " + std::to_string(int(w.format)));
  }
}

TEST(Matmul, DenseFormatsMatchScalar) {
  std::mt19937 rng(2);
  ThreadPool pool(3);
  for (WeightFormat format : {WeightFormat::f32, WeightFormat::f16, WeightFormat::bf16}) {
    for (int64_t rows : kRowCounts) {
      for (int64_t cols : {1, 7, 32, 33, 96, 1568}) {
        const TestWeights t = testing::make_dense(format, rows, cols, rng);
        check_all_tables(t, kTokenCounts, rng, pool, "dense " + std::to_string(int(format)));
      }
    }
  }
}

TEST(Matmul, Mxfp4MatchesScalar) {
  std::mt19937 rng(3);
  ThreadPool pool(3);
  for (int64_t rows : kRowCounts) {
    for (int64_t cols : {32, 64, 96, 544, 1568}) {
      const TestWeights t = testing::make_mxfp4(rows, cols, rng);
      check_all_tables(t, kTokenCounts, rng, pool, "mxfp4");
    }
  }
}

TEST(Matmul, AffineMatchesScalar) {
  std::mt19937 rng(4);
  ThreadPool pool(3);
  for (int bits : {4, 8}) {
    for (int group_size : {32, 64, 128}) {
      for (ScaleType scale_type : {ScaleType::f16, ScaleType::bf16, ScaleType::f32}) {
        for (int64_t rows : {int64_t(1), int64_t(33), int64_t(100)}) {
          for (int64_t cols : {int64_t(group_size), int64_t(3 * group_size), int64_t(1664)}) {
            if (cols % group_size != 0) continue;
            const TestWeights t =
                testing::make_affine(rows, cols, bits, group_size, scale_type, rng);
            check_all_tables(t, {1, 3, 17}, rng, pool,
                             "affine bits " + std::to_string(bits) + " group " +
                                 std::to_string(group_size) + " scale " +
                                 std::to_string(int(scale_type)));
          }
        }
      }
    }
  }
}

// One row per scale byte, 160 inputs: groups 1 and 4 carry that byte and all 16 codes (negative
// zero included), the others byte 127. Group 1 sits in the first 128-input block and group 4 after
// it, so kernels that treat whole blocks and leftover groups apart see the byte in both.
TestWeights make_edge_rows(const std::vector<uint8_t>& edge_bytes, std::mt19937& rng) {
  constexpr size_t kGroups = 5;
  TestWeights t = testing::make_mxfp4(int64_t(edge_bytes.size()), 32 * kGroups, rng);
  for (size_t r = 0; r < edge_bytes.size(); ++r) {
    for (size_t g = 0; g < kGroups; ++g) {
      const bool edge = g == 1 || g == 4;
      t.e8m0[r * kGroups + g] = edge ? edge_bytes[r] : 127;
      if (!edge) continue;
      for (size_t word = 0; word < 4; ++word) {
        t.packed[(r * kGroups + g) * 4 + word] = word % 2 == 0 ? 0x76543210u : 0xfedcba98u;
      }
    }
  }
  testing::fill_abs_terms_from_rows(t);
  for (float& v : t.abs_terms) {
    if (!std::isfinite(v)) v = 0.0f;
  }
  return t;
}

TEST(Matmul, Mxfp4EdgeScaleBytes) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  const TestWeights decode_rows = make_edge_rows({0, 1, 126, 127, 128, 254, 255}, rng);
  check_all_tables(decode_rows, {1}, rng, pool, "mxfp4 edge bytes");
  const TestWeights prefill_rows = make_edge_rows({0, 1, 126, 127, 128}, rng);
  check_all_tables(prefill_rows, {2, 7, 17}, rng, pool, "mxfp4 edge bytes");

  // A small batch runs the decode kernel per token, so each token gets exactly its decode result.
  // Prefill (more than 16 tokens) multiplies dequantized weights, and with byte 254 codes of
  // magnitude 2 or more overflow fp32 (2 * 2^127), so those rows are non-finite where decode may
  // stay finite.
  constexpr int64_t kPrefillTokens = 17;
  const std::vector<float> x = testing::random_floats(kPrefillTokens * 160, rng, 0.5f, 1.0f);
  for (const KernelTable* table : runnable_tables()) {
    std::vector<float> batch(2 * 7), single(7);
    matmul_with_table(*table, decode_rows.w, x.data(), 2, batch.data(), pool);
    for (int64_t tok = 0; tok < 2; ++tok) {
      matmul_with_table(*table, decode_rows.w, x.data() + tok * 160, 1, single.data(), pool);
      for (int64_t r = 0; r < 7; ++r) {
        const float a = batch[size_t(tok * 7 + r)], b = single[size_t(r)];
        EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << table->name << " token " << tok << " row " << r;
      }
    }
    std::vector<float> y(kPrefillTokens * 7);
    matmul_with_table(*table, decode_rows.w, x.data(), kPrefillTokens, y.data(), pool);
    for (int64_t tok = 0; tok < kPrefillTokens; ++tok) {
      EXPECT_TRUE(std::isfinite(y[size_t(tok * 7 + 4)])) << table->name << " token " << tok;
      EXPECT_FALSE(std::isfinite(y[size_t(tok * 7 + 5)])) << table->name << " token " << tok;
      EXPECT_FALSE(std::isfinite(y[size_t(tok * 7 + 6)])) << table->name << " token " << tok;
    }
  }
}

TEST(DequantizeRow, EveryTableMatchesScalar) {
  std::mt19937 rng(6);
  std::vector<TestWeights> cases;
  cases.push_back(testing::make_dense(WeightFormat::f32, 3, 100, rng));
  cases.push_back(testing::make_dense(WeightFormat::f16, 3, 1543, rng));
  cases.push_back(testing::make_dense(WeightFormat::bf16, 3, 33, rng));
  cases.push_back(testing::make_mxfp4(7, 96, rng, 0, 255));
  cases.push_back(testing::make_affine(3, 256, 4, 64, ScaleType::f16, rng));
  cases.push_back(testing::make_affine(3, 256, 8, 128, ScaleType::bf16, rng));
  cases.push_back(testing::make_affine(3, 96, 4, 32, ScaleType::bf16, rng));
  cases.push_back(testing::make_affine(3, 128, 8, 32, ScaleType::f32, rng));
  for (const TestWeights& t : cases) {
    const WeightMatrix& w = t.w;
    for (int64_t r = 0; r < w.rows; ++r) {
      std::vector<float> expected(size_t(w.cols));
      scalar_kernel_table().dequantize_segment(w, r, 0, w.cols, expected.data());
      for (const KernelTable* table : runnable_tables()) {
        std::vector<float> out(size_t(w.cols) + 1, 0.0f);
        table->dequantize_segment(w, r, 0, w.cols, out.data() + 1);
        for (int64_t c = 0; c < w.cols; ++c) {
          const float e = expected[size_t(c)];
          const float a = out[size_t(c) + 1];
          // Affine may fuse scale * code + bias into one rounding; everything else is exact.
          const float tolerance =
              w.format == WeightFormat::affine ? 1e-6f * t.abs_terms[size_t(r * w.cols + c)] : 0.0f;
          if (std::isnan(e)) {
            EXPECT_TRUE(std::isnan(a)) << table->name << " row " << r << " col " << c;
          } else {
            ASSERT_LE(std::fabs(a - e), tolerance)
                << table->name << " format " << int(w.format) << " row " << r << " col " << c
                << ": expected " << e << ", got " << a;
            EXPECT_EQ(std::signbit(a), std::signbit(e)) << table->name << " col " << c;
          }
        }
      }
    }
  }
}

TEST(DequantizeRow, ChecksArguments) {
  std::mt19937 rng(7);
  const TestWeights t = testing::make_mxfp4(2, 64, rng);
  std::vector<float> out(64);
  EXPECT_THROW(dequantize_row(t.w, 2, out.data()), std::invalid_argument);
  EXPECT_THROW(dequantize_row(t.w, -1, out.data()), std::invalid_argument);
  EXPECT_NO_THROW(dequantize_row(t.w, 1, out.data()));
}

TEST(Matmul, ThreadedEqualsSingleThreaded) {
  std::mt19937 rng(8);
  ThreadPool one(1), many(4);
  std::vector<TestWeights> cases;
  cases.push_back(testing::make_mxfp4(100, 544, rng));
  cases.push_back(testing::make_dense(WeightFormat::f16, 100, 200, rng));
  cases.push_back(testing::make_affine(100, 256, 4, 64, ScaleType::bf16, rng));
  for (const TestWeights& t : cases) {
    for (int64_t num_tokens : {1, 17}) {
      const std::vector<float> x = testing::random_floats(num_tokens * t.w.cols, rng);
      for (const KernelTable* table : runnable_tables()) {
        std::vector<float> y1(size_t(num_tokens * t.w.rows)), y4(y1.size());
        matmul_with_table(*table, t.w, x.data(), num_tokens, y1.data(), one);
        matmul_with_table(*table, t.w, x.data(), num_tokens, y4.data(), many);
        EXPECT_EQ(y1, y4) << table->name << " tokens " << num_tokens;
      }
    }
  }
}

TEST(Matmul, RejectsBadWeights) {
  std::mt19937 rng(9);
  ThreadPool pool(1);
  std::vector<float> x(128), y(128);
  TestWeights t = testing::make_mxfp4(2, 64, rng);

  WeightMatrix bad = t.w;
  bad.cols = 48;
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), pool), std::invalid_argument);
  bad = t.w;
  bad.e8m0_scales = nullptr;
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), pool), std::invalid_argument);
  bad = t.w;
  bad.group_size = 64;
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), pool), std::invalid_argument);
  bad = t.w;
  bad.data = nullptr;
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), pool), std::invalid_argument);
  EXPECT_THROW(matmul(t.w, nullptr, 1, y.data(), pool), std::invalid_argument);
  EXPECT_THROW(matmul(t.w, x.data(), -1, y.data(), pool), std::invalid_argument);

  TestWeights a = testing::make_affine(2, 64, 4, 32, ScaleType::f16, rng);
  bad = a.w;
  bad.bits = 3;
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), pool), std::invalid_argument);
  bad = a.w;
  bad.group_size = 16;
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), pool), std::invalid_argument);
  bad = a.w;
  bad.affine_biases = nullptr;
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), pool), std::invalid_argument);

  try {
    bad = t.w;
    bad.cols = 48;
    matmul(bad, x.data(), 1, y.data(), pool);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("mxfp4 weight [2, 48]"), std::string::npos) << e.what();
  }
}

TEST(WeightMatrix, StorageBytes) {
  WeightMatrix w;
  w.format = WeightFormat::mxfp4;
  w.rows = 6144;
  w.cols = 1536;
  w.bits = 4;
  w.group_size = 32;
  EXPECT_EQ(w.storage_bytes(), 6144 * 768 + 6144 * 48);
  w.format = WeightFormat::f16;
  EXPECT_EQ(w.storage_bytes(), 6144 * 1536 * 2);
  w.format = WeightFormat::f32;
  EXPECT_EQ(w.storage_bytes(), 6144 * 1536 * 4);
  w.format = WeightFormat::affine;
  w.bits = 8;
  w.group_size = 64;
  w.affine_scale_type = ScaleType::bf16;
  EXPECT_EQ(w.storage_bytes(), 6144 * 1536 + 2 * 6144 * 24 * 2);
}

TEST(KernelDispatch, ForcedLevels) {
  EXPECT_STREQ(select_kernel_table("scalar").name, "scalar");
  EXPECT_THROW(select_kernel_table("avx9"), std::runtime_error);
  const std::string best = select_kernel_table(nullptr).name;
  EXPECT_EQ(best, select_kernel_table("").name);
  EXPECT_STREQ(select_kernel_table(best.c_str()).name, best.c_str());
#if defined(__x86_64__)
  EXPECT_THROW(kernel_table_for("neon"), std::runtime_error);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl")) {
    EXPECT_EQ(best, "avx512");
  }
#endif
  const std::string active = kernel_isa();
  EXPECT_TRUE(active == "scalar" || active == "avx2" || active == "avx512" || active == "neon")
      << active;
}

}  // namespace
}  // namespace mxgemma
