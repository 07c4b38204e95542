#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/kernel_table.h"

namespace mxgemma {
namespace {

// Queries per work item: their score rows [kQueryBlock, rows] stay in the thread's cache while
// the packed keys and values stream past.
constexpr int64_t kQueryBlock = 48;

int64_t tiles_for(int64_t count) { return (count + kTileRows - 1) / kTileRows; }

// Copy one head's columns [offset, offset + head_dim) of a [rows, ld] matrix into consecutive
// [depth][kTileRows] tiles, the layout gemm_tile reads. Key tile i contains keys [32 i, 32 i + 32)
// over depth head_dim. Value tile i contains value columns [32 i, 32 i + 32) over depth rows.
// Entries past the end are zero.
std::vector<float> pack_keys(const float* k, int64_t ld, int64_t offset, int64_t rows, int head_dim) {
  std::vector<float> packed(size_t(tiles_for(rows) * head_dim * kTileRows), 0.0f);
  for (int64_t j = 0; j < rows; ++j) {
    float* tile = packed.data() + (j / kTileRows) * head_dim * kTileRows + j % kTileRows;
    const float* key = k + j * ld + offset;
    for (int d = 0; d < head_dim; ++d) tile[d * kTileRows] = key[d];
  }
  return packed;
}

std::vector<float> pack_values(const float* v, int64_t ld, int64_t offset, int64_t rows, int head_dim) {
  std::vector<float> packed(size_t(tiles_for(head_dim) * rows * kTileRows), 0.0f);
  for (int64_t j = 0; j < rows; ++j) {
    const float* value = v + j * ld + offset;
    for (int d = 0; d < head_dim; ++d) {
      packed[size_t((d / kTileRows) * rows * kTileRows + j * kTileRows + d % kTileRows)] = value[d];
    }
  }
  return packed;
}

// The largest of x[0, n), with 16 running maxima the compiler turns into vector max operations.
float row_max(const float* x, int64_t n) {
  constexpr int kLanes = 16;
  float lanes[kLanes];
  std::fill_n(lanes, kLanes, -INFINITY);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int i = 0; i < kLanes; ++i) lanes[i] = x[j + i] > lanes[i] ? x[j + i] : lanes[i];
  }
  float result = -INFINITY;
  for (float lane : lanes) result = std::max(result, lane);
  for (; j < n; ++j) result = std::max(result, x[j]);
  return result;
}

}  // namespace

void bidirectional_attention(const float* q, const float* k, const float* v, int64_t rows, int heads, int kv_heads,
                             int head_dim, float scale, float* out, ThreadPool& pool) {
  if (kv_heads <= 0 || heads % kv_heads != 0) {
    throw std::invalid_argument("bidirectional_attention: " + std::to_string(heads) + " query heads are not a multiple of " +
                                std::to_string(kv_heads) + " key/value heads");
  }
  const KernelTable& table = active_kernel_table();
  const int64_t q_width = int64_t(heads) * head_dim;
  const int64_t kv_width = int64_t(kv_heads) * head_dim;
  const int group = heads / kv_heads;

  std::vector<std::vector<float>> keys(static_cast<size_t>(kv_heads));
  std::vector<std::vector<float>> values(static_cast<size_t>(kv_heads));
  pool.parallel_for(kv_heads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      keys[size_t(g)] = pack_keys(k, kv_width, g * head_dim, rows, head_dim);
      values[size_t(g)] = pack_values(v, kv_width, g * head_dim, rows, head_dim);
    }
  });

  const int64_t query_blocks = (rows + kQueryBlock - 1) / kQueryBlock;
  pool.parallel_for(int64_t(heads) * query_blocks, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    thread_local std::vector<float> inverse_sums;
    scores.resize(size_t(kQueryBlock * rows));
    inverse_sums.resize(size_t(kQueryBlock));
    for (int64_t item = begin; item < end; ++item) {
      const int h = int(item / query_blocks);
      const int64_t t0 = (item % query_blocks) * kQueryBlock;
      const int64_t count = std::min(kQueryBlock, rows - t0);
      const float* query = q + t0 * q_width + int64_t(h) * head_dim;
      const std::vector<float>& key_tiles = keys[size_t(h / group)];
      const std::vector<float>& value_tiles = values[size_t(h / group)];

      // scores[t, j] = q_t . k_j, a key tile at a time.
      for (int64_t tile = 0; tile < tiles_for(rows); ++tile) {
        const int64_t valid = std::min(kTileRows, rows - tile * kTileRows);
        table.gemm_tile(key_tiles.data() + tile * head_dim * kTileRows, head_dim, query, q_width, count,
                        scores.data() + tile * kTileRows, rows, valid, false);
      }
      for (int64_t t = 0; t < count; ++t) {
        float* row = scores.data() + t * rows;
        if (scale != 1.0f) {
          for (int64_t j = 0; j < rows; ++j) row[j] *= scale;
        }
        inverse_sums[size_t(t)] = 1.0f / table.exp_shifted_sum(row, row_max(row, rows), rows);
      }
      // out[t, d] = sum_j p[t, j] v[j, d], a tile of 32 value columns at a time.
      float* output = out + t0 * q_width + int64_t(h) * head_dim;
      for (int64_t tile = 0; tile < tiles_for(head_dim); ++tile) {
        const int64_t valid = std::min(kTileRows, int64_t(head_dim) - tile * kTileRows);
        table.gemm_tile(value_tiles.data() + tile * rows * kTileRows, rows, scores.data(), rows, count,
                        output + tile * kTileRows, q_width, valid, false);
      }
      // The softmax denominators, applied to the head_dim outputs instead of the rows weights.
      for (int64_t t = 0; t < count; ++t) {
        float* output_row = output + t * q_width;
        for (int d = 0; d < head_dim; ++d) output_row[d] *= inverse_sums[size_t(t)];
      }
    }
  });
}

}  // namespace mxgemma
