// bidirectional_attention against a direct double-precision softmax(scale Q K^T) V, and the
// exp_shifted_sum entry of every ISA table against the scalar one.
#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/kernel_table.h"
#include "test_weights.h"

namespace mxgemma {
namespace {

std::vector<double> reference_attention(const std::vector<float>& q, const std::vector<float>& k,
                                        const std::vector<float>& v, int64_t rows, int heads, int kv_heads,
                                        int head_dim, double scale) {
  const int64_t q_width = int64_t(heads) * head_dim, kv_width = int64_t(kv_heads) * head_dim;
  std::vector<double> out(size_t(rows * q_width), 0.0);
  std::vector<double> weights(static_cast<size_t>(rows));
  for (int h = 0; h < heads; ++h) {
    const int64_t kv_offset = int64_t(h / (heads / kv_heads)) * head_dim;
    for (int64_t t = 0; t < rows; ++t) {
      double max_logit = -INFINITY;
      for (int64_t j = 0; j < rows; ++j) {
        double logit = 0.0;
        for (int d = 0; d < head_dim; ++d) {
          logit += double(q[size_t(t * q_width + h * head_dim + d)]) * k[size_t(j * kv_width + kv_offset + d)];
        }
        weights[size_t(j)] = scale * logit;
        max_logit = std::max(max_logit, weights[size_t(j)]);
      }
      double sum = 0.0;
      for (double& w : weights) sum += (w = std::exp(w - max_logit));
      for (int64_t j = 0; j < rows; ++j) {
        for (int d = 0; d < head_dim; ++d) {
          out[size_t(t * q_width + h * head_dim + d)] +=
              weights[size_t(j)] / sum * v[size_t(j * kv_width + kv_offset + d)];
        }
      }
    }
  }
  return out;
}

struct AttentionShape {
  int64_t rows;
  int heads, kv_heads, head_dim;
  float scale;
};

TEST(BidirectionalAttention, MatchesDirectSoftmax) {
  // Row counts around the 32-key tile and 48-query block, head sizes below, at and above a tile,
  // grouped key/value heads and a non-unit scale.
  const std::vector<AttentionShape> shapes = {
      {1, 1, 1, 8, 1.0f}, {31, 2, 2, 32, 1.0f}, {49, 4, 2, 64, 0.125f}, {97, 3, 1, 40, 1.0f}, {130, 2, 1, 72, 0.3f},
  };
  std::mt19937 rng(5);
  ThreadPool pool(2);
  for (const AttentionShape& shape : shapes) {
    const int64_t q_size = shape.rows * shape.heads * shape.head_dim;
    const int64_t kv_size = shape.rows * shape.kv_heads * shape.head_dim;
    // Spread of about 3 in the logits, as after q/k norms, so the softmax is neither flat nor one-hot.
    std::vector<float> q = testing::random_floats(q_size, rng), k = testing::random_floats(kv_size, rng);
    const std::vector<float> v = testing::random_floats(kv_size, rng);
    for (float& x : q) x *= 0.6f;
    for (float& x : k) x *= 0.6f;
    std::vector<float> out(size_t(q_size), NAN);
    bidirectional_attention(q.data(), k.data(), v.data(), shape.rows, shape.heads, shape.kv_heads, shape.head_dim,
                            shape.scale, out.data(), pool);
    const std::vector<double> expected =
        reference_attention(q, k, v, shape.rows, shape.heads, shape.kv_heads, shape.head_dim, shape.scale);
    double max_diff = 0.0;
    for (size_t i = 0; i < out.size(); ++i) max_diff = std::max(max_diff, std::fabs(out[i] - expected[i]));
    EXPECT_LT(max_diff, 1e-5) << "rows " << shape.rows << " heads " << shape.heads << "/" << shape.kv_heads
                              << " head_dim " << shape.head_dim;
  }
}

TEST(BidirectionalAttention, RejectsUnevenHeadGroups) {
  ThreadPool pool(1);
  float x = 0.0f;
  EXPECT_THROW(bidirectional_attention(&x, &x, &x, 1, 3, 2, 1, 1.0f, &x, pool), std::invalid_argument);
}

TEST(ExpShiftedSum, EveryTableMatchesScalar) {
  std::mt19937 rng(3);
  const KernelTable& scalar = scalar_kernel_table();
  for (int64_t n : {0, 1, 7, 8, 15, 16, 17, 100, 1001}) {
    std::vector<float> input = testing::random_floats(n, rng);
    for (float& x : input) x *= 20.0f;  // down to e^-40, where exp must not flush early
    std::vector<float> expected = input;
    const float expected_sum = scalar.exp_shifted_sum(expected.data(), 5.0f, n);
    for (const char* isa : {"avx2", "avx512", "neon"}) {
      const KernelTable* table = nullptr;
      try {
        table = &kernel_table_for(isa);
      } catch (const std::runtime_error&) {
        continue;  // not available on this CPU or build
      }
      std::vector<float> actual = input;
      const float sum = table->exp_shifted_sum(actual.data(), 5.0f, n);
      // The lanes sum in another order than the scalar loop: float rounding over 1001 terms.
      EXPECT_NEAR(sum, expected_sum, 1e-5 * expected_sum + 1e-30) << isa << " n " << n;
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(actual[size_t(i)], expected[size_t(i)], 2e-6 * expected[size_t(i)] + 1e-37)
            << isa << " n " << n << " i " << i;
      }
    }
  }
}

}  // namespace
}  // namespace mxgemma
