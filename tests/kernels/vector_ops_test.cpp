#include "kernels/vector_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "test_weights.h"

namespace mxgemma {
namespace {

std::vector<const KernelTable*> vector_tables() {
  std::vector<const KernelTable*> tables;
  for (const char* isa : {"avx2", "avx512", "neon"}) {
    try {
      tables.push_back(&kernel_table_for(isa));
    } catch (const std::runtime_error&) {
      // Not available on this CPU or build.
    }
  }
  return tables;
}

const std::vector<int64_t> kLengths = {0, 1, 7, 8, 15, 16, 17, 33, 100, 1000};

TEST(VectorOps, ReductionsMatchScalar) {
  std::mt19937 rng(11);
  const KernelTable& scalar = scalar_kernel_table();
  for (int64_t n : kLengths) {
    // One float past an aligned start, as rows inside larger buffers often are.
    const std::vector<float> a = testing::random_floats(n + 1, rng);
    const std::vector<float> b = testing::random_floats(n + 1, rng);
    double abs_sum = 0.0, square_sum = 0.0;
    for (int64_t i = 1; i <= n; ++i) {
      abs_sum += std::fabs(double(a[size_t(i)]) * double(b[size_t(i)]));
      square_sum += double(a[size_t(i)]) * double(a[size_t(i)]);
    }
    for (const KernelTable* table : vector_tables()) {
      EXPECT_NEAR(table->dot(a.data() + 1, b.data() + 1, n),
                  scalar.dot(a.data() + 1, b.data() + 1, n), 1e-5 * abs_sum + 1e-30)
          << table->name << " n " << n;
      EXPECT_NEAR(table->sum_squares(a.data() + 1, n), scalar.sum_squares(a.data() + 1, n),
                  1e-5 * square_sum + 1e-30)
          << table->name << " n " << n;
    }
  }
}

TEST(VectorOps, ElementwiseMatchScalar) {
  std::mt19937 rng(12);
  const KernelTable& scalar = scalar_kernel_table();
  for (int64_t n : kLengths) {
    const std::vector<float> x = testing::random_floats(n + 1, rng);
    const std::vector<float> y0 = testing::random_floats(n + 1, rng);
    std::vector<float> expected_add = y0, expected_mul = y0;
    scalar.add_scaled(expected_add.data() + 1, x.data() + 1, 0.75f, n);
    scalar.multiply(expected_mul.data() + 1, x.data() + 1, n);
    for (const KernelTable* table : vector_tables()) {
      std::vector<float> add = y0, mul = y0;
      table->add_scaled(add.data() + 1, x.data() + 1, 0.75f, n);
      table->multiply(mul.data() + 1, x.data() + 1, n);
      EXPECT_EQ(add[0], y0[0]) << "add_scaled wrote before y";
      for (int64_t i = 1; i <= n; ++i) {
        // add_scaled may fuse the multiply and add; the bound is one rounding of each term.
        const double bound = 1.2e-7 * (std::fabs(y0[size_t(i)]) + 0.75 * std::fabs(x[size_t(i)]));
        EXPECT_NEAR(add[size_t(i)], expected_add[size_t(i)], bound) << table->name << " i " << i;
        EXPECT_EQ(mul[size_t(i)], expected_mul[size_t(i)]) << table->name << " i " << i;
      }
    }
  }
}

// Error against the double-precision scalar reference: |diff| <= relative * |expected| + absolute.
void expect_relative(const std::vector<float>& expected, const std::vector<float>& actual,
                     double relative, double absolute, const std::string& label) {
  ASSERT_EQ(expected.size(), actual.size());
  int failures = 0;
  for (size_t i = 0; i < expected.size() && failures < 5; ++i) {
    const double e = expected[i], a = actual[i];
    if (!(std::fabs(a - e) <= relative * std::fabs(e) + absolute)) {
      ++failures;
      ADD_FAILURE() << label << " element " << i << ": expected " << e << ", got " << a
                    << " (relative error " << std::fabs(a - e) / std::fabs(e) << ")";
    }
  }
}

TEST(VectorOps, GeluTanhMulMatchesReference) {
  std::mt19937 rng(13);
  std::vector<float> gate = testing::random_floats(2000, rng, -12.0f, 12.0f);
  for (float v : {0.0f, -0.0f, 1e-6f, -1e-6f, 1e-3f, -3.0f, -6.0f, -9.5f, 5.0f, 20.0f, -20.0f}) {
    gate.push_back(v);
  }
  const std::vector<float> up = testing::random_floats(int64_t(gate.size()), rng, 0.5f, 2.0f);
  std::vector<float> expected = gate;
  scalar_kernel_table().gelu_tanh_mul(expected.data(), up.data(), int64_t(expected.size()));
  for (const KernelTable* table : vector_tables()) {
    for (int64_t n : {int64_t(gate.size()), int64_t(13)}) {
      std::vector<float> actual(gate.begin(), gate.begin() + n);
      table->gelu_tanh_mul(actual.data(), up.data(), n);
      // For gate below about -2 the fp32 rounding of u dominates: the results there are below
      // 0.05 * up, and their error stays below 1e-8 * |up| (up < 2 here).
      expect_relative(std::vector<float>(expected.begin(), expected.begin() + n), actual, 1e-6,
                      2e-8, std::string(table->name) + " gelu_tanh_mul");
    }
  }
}

TEST(VectorOps, GeluTanhHandValues) {
  // PyTorch gelu(approximate="tanh") at 1 is 0.841192, at -1 is -0.158808.
  std::vector<float> gate = {1.0f, -1.0f, 0.0f};
  const std::vector<float> up = {1.0f, 1.0f, 1.0f};
  gelu_tanh_mul(gate.data(), up.data(), 3);
  EXPECT_NEAR(gate[0], 0.841192f, 1e-6f);
  EXPECT_NEAR(gate[1], -0.158808f, 1e-6f);
  EXPECT_EQ(gate[2], 0.0f);
}

TEST(VectorOps, SoftcapMatchesReference) {
  std::mt19937 rng(14);
  std::vector<float> x = testing::random_floats(3000, rng, -100.0f, 100.0f);
  for (float v :
       {0.0f, 1e-6f, -1e-4f, 0.3f * 30.0f, -0.3f * 30.0f, 8.99f, 9.01f, 500.0f, -500.0f}) {
    x.push_back(v);
  }
  std::vector<float> expected = x;
  scalar_kernel_table().softcap(expected.data(), 30.0f, int64_t(expected.size()));
  for (const KernelTable* table : vector_tables()) {
    for (int64_t n : {int64_t(x.size()), int64_t(11)}) {
      std::vector<float> actual(x.begin(), x.begin() + n);
      table->softcap(actual.data(), 30.0f, n);
      expect_relative(std::vector<float>(expected.begin(), expected.begin() + n), actual, 1e-6,
                      1e-30, std::string(table->name) + " softcap");
    }
  }
  std::vector<float> capped = {1000.0f, -1000.0f};
  softcap(capped.data(), 30.0f, 2);
  EXPECT_FLOAT_EQ(capped[0], 30.0f);
  EXPECT_FLOAT_EQ(capped[1], -30.0f);
}

}  // namespace
}  // namespace mxgemma
