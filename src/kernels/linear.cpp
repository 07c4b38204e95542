// matmul() and dequantize_row(): argument checks, the run-time ISA pick, and the threading of the
// per-ISA kernels. Decode (one token) splits rows across threads. A small batch (several sequences
// decoded together) runs the decode kernel for each token over blocks of rows that stay in cache.
// Prefill gives each thread blocks of kTileRows rows, dequantizes kDepthChunk inputs of a block at
// a time, and multiplies that tile with every token before moving on.
#include "kernels/linear.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"

namespace mxgemma {
namespace {

// Inputs per prefill tile: a multiple of every group size (32, 64, 128), and small enough that the
// [kDepthChunk][kTileRows] fp32 tile (32 KiB) stays in the L1/L2 cache while all tokens use it.
constexpr int64_t kDepthChunk = 256;

// Rows per decode work item: enough to amortize the pool's dispatch, small enough to balance
// threads.
constexpr int64_t kMatvecMinRows = 16;

// Up to this many tokens the small-batch path wins: the prefill tiles' dequantize-and-transpose
// work is the same for 2 tokens as for 512 and pays off only over many tokens.
constexpr int64_t kSmallBatchMaxTokens = 16;

const char* format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::f32:
      return "f32";
    case WeightFormat::f16:
      return "f16";
    case WeightFormat::bf16:
      return "bf16";
    case WeightFormat::mxfp4:
      return "mxfp4";
    case WeightFormat::affine:
      return "affine";
  }
  return "unknown";
}

[[noreturn]] void fail_weight(const char* op, const WeightMatrix& w, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + format_name(w.format) + " weight [" +
                              std::to_string(w.rows) + ", " + std::to_string(w.cols) + "] " + what);
}

void check_weight(const char* op, const WeightMatrix& w) {
  if (w.rows <= 0 || w.cols <= 0) fail_weight(op, w, "has an empty shape");
  if (w.data == nullptr) fail_weight(op, w, "has no data");
  if (w.format == WeightFormat::mxfp4) {
    if (w.bits != 4 || w.group_size != 32) {
      fail_weight(op, w,
                  "needs bits 4 and group_size 32 (MLX mxfp4), got bits " + std::to_string(w.bits) +
                      " group_size " + std::to_string(w.group_size));
    }
    if (w.cols % 32 != 0) fail_weight(op, w, "has cols not a multiple of the group size 32");
    if (w.e8m0_scales == nullptr) fail_weight(op, w, "has no E8M0 scales");
  } else if (w.format == WeightFormat::affine) {
    if (w.bits != 4 && w.bits != 8) {
      fail_weight(op, w, "has bits " + std::to_string(w.bits) + ", but only 4 and 8 are supported");
    }
    if (w.group_size != 32 && w.group_size != 64 && w.group_size != 128) {
      fail_weight(op, w,
                  "has group_size " + std::to_string(w.group_size) +
                      ", but only 32, 64 and 128 are supported");
    }
    if (w.cols % w.group_size != 0) fail_weight(op, w, "has cols not a multiple of group_size");
    if (w.affine_scales == nullptr || w.affine_biases == nullptr) {
      fail_weight(op, w, "has no scales or biases");
    }
  }
}

void matvec(const KernelTable& table, const WeightMatrix& w, const float* x, float* y,
            ThreadPool& pool) {
  thread_local std::vector<float> x_group_sums;
  const float* sums = nullptr;
  if (w.format == WeightFormat::affine) {
    const int64_t groups = w.cols / w.group_size;
    x_group_sums.assign(size_t(groups), 0.0f);
    for (int64_t g = 0; g < groups; ++g) {
      float sum = 0.0f;
      for (int64_t c = g * w.group_size; c < (g + 1) * w.group_size; ++c) sum += x[c];
      x_group_sums[size_t(g)] = sum;
    }
    sums = x_group_sums.data();
  }
  pool.parallel_for(w.rows, kMatvecMinRows, [&](int64_t begin, int64_t end) {
    table.matvec_rows(w, x, sums, y, begin, end);
  });
}

// Runs the decode kernel for every token over one block of rows at a time: the block's weights
// come from memory once and stay in cache for the other tokens.
void matmul_small_batch(const KernelTable& table, const WeightMatrix& w, const float* x,
                        int64_t num_tokens, float* y, ThreadPool& pool) {
  constexpr int64_t kBlockRows = 32;
  thread_local std::vector<float> x_group_sums;
  const int64_t groups = w.format == WeightFormat::affine ? w.cols / w.group_size : 0;
  x_group_sums.assign(size_t(groups * num_tokens), 0.0f);
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int64_t g = 0; g < groups; ++g) {
      float sum = 0.0f;
      for (int64_t c = g * w.group_size; c < (g + 1) * w.group_size; ++c) sum += x[t * w.cols + c];
      x_group_sums[size_t(t * groups + g)] = sum;
    }
  }
  const float* sums = x_group_sums.data();
  pool.parallel_for(w.rows, kMatvecMinRows, [&](int64_t begin, int64_t end) {
    for (int64_t r0 = begin; r0 < end; r0 += kBlockRows) {
      const int64_t r1 = std::min(end, r0 + kBlockRows);
      for (int64_t t = 0; t < num_tokens; ++t) {
        table.matvec_rows(w, x + t * w.cols, groups > 0 ? sums + t * groups : nullptr, y + t * w.rows, r0, r1);
      }
    }
  });
}

void matmul_tiled(const KernelTable& table, const WeightMatrix& w, const float* x,
                  int64_t num_tokens, float* y, ThreadPool& pool) {
  const int64_t num_blocks = (w.rows + kTileRows - 1) / kTileRows;
  pool.parallel_for(num_blocks, 1, [&](int64_t block_begin, int64_t block_end) {
    thread_local std::vector<float> row_buffer;
    thread_local std::vector<float> tile;
    row_buffer.resize(size_t(kTileRows * kDepthChunk));
    tile.resize(size_t(kTileRows * kDepthChunk));

    for (int64_t block = block_begin; block < block_end; ++block) {
      const int64_t row0 = block * kTileRows;
      const int64_t valid_rows = std::min(kTileRows, w.rows - row0);
      for (int64_t k0 = 0; k0 < w.cols; k0 += kDepthChunk) {
        const int64_t depth = std::min(kDepthChunk, w.cols - k0);
        for (int64_t r = 0; r < valid_rows; ++r) {
          table.dequantize_segment(w, row0 + r, k0, depth, row_buffer.data() + r * kDepthChunk);
        }

        // Transpose to [depth][kTileRows]. Rows past the matrix end are zero and never stored.
        for (int64_t k = 0; k < depth; ++k) {
          float* tile_row = tile.data() + k * kTileRows;
          for (int64_t r = 0; r < valid_rows; ++r)
            tile_row[r] = row_buffer[size_t(r * kDepthChunk + k)];
          for (int64_t r = valid_rows; r < kTileRows; ++r) tile_row[r] = 0.0f;
        }

        table.gemm_tile(tile.data(), depth, x + k0, w.cols, num_tokens, y + row0, w.rows,
                        valid_rows, k0 > 0);
      }
    }
  });
}

bool cpu_has(const char* isa_name) {
  const std::string isa = isa_name;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  if (isa == "avx2") return avx2;
  if (isa == "avx512") {
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
  }
  return false;
#elif defined(__aarch64__)
  return isa == "neon";  // Advanced SIMD is mandatory on AArch64.
#else
  return false;
#endif
}

const KernelTable* compiled_table(const std::string& isa) {
  if (isa == "avx512") return avx512_kernel_table();
  if (isa == "avx2") return avx2_kernel_table();
  if (isa == "neon") return neon_kernel_table();
  return nullptr;
}

}  // namespace

const KernelTable& kernel_table_for(const char* isa_name) {
  const std::string isa = isa_name;
  if (isa == "scalar") return scalar_kernel_table();
  if (isa != "avx2" && isa != "avx512" && isa != "neon") {
    throw std::runtime_error("MXGEMMA_ISA=" + isa + " is not one of scalar, avx2, avx512, neon");
  }
  // The CPU check comes first: the ISA files' code, even a table accessor, may use their flags.
  if (!cpu_has(isa_name)) {
    throw std::runtime_error("MXGEMMA_ISA=" + isa +
                             " was requested but this CPU lacks it. "
                             "Use a lower level or unset MXGEMMA_ISA");
  }
  const KernelTable* table = compiled_table(isa);
  if (table == nullptr) {
    throw std::runtime_error("MXGEMMA_ISA=" + isa +
                             " is not compiled into this build. "
                             "Use a lower level or unset MXGEMMA_ISA");
  }
  return *table;
}

const KernelTable& select_kernel_table(const char* forced_isa) {
  if (forced_isa != nullptr && forced_isa[0] != '\0') return kernel_table_for(forced_isa);
  for (const char* isa : {"avx512", "avx2", "neon"}) {
    if (cpu_has(isa) && compiled_table(isa) != nullptr) return *compiled_table(isa);
  }
  return scalar_kernel_table();
}

const KernelTable& active_kernel_table() {
  static const KernelTable& table = select_kernel_table(std::getenv("MXGEMMA_ISA"));
  return table;
}

const char* kernel_isa() { return active_kernel_table().name; }

int64_t WeightMatrix::storage_bytes() const {
  switch (format) {
    case WeightFormat::f32:
      return rows * cols * 4;
    case WeightFormat::f16:
    case WeightFormat::bf16:
      return rows * cols * 2;
    case WeightFormat::mxfp4:
      return rows * cols / 2 + rows * (cols / 32);
    case WeightFormat::affine: {
      const int64_t groups = group_size > 0 ? rows * (cols / group_size) : 0;
      const int64_t scale_bytes = affine_scale_type == ScaleType::f32 ? 4 : 2;
      return rows * cols * bits / 8 + 2 * groups * scale_bytes;
    }
  }
  return 0;
}

void matmul_with_table(const KernelTable& table, const WeightMatrix& w, const float* x,
                       int64_t num_tokens, float* y, ThreadPool& pool) {
  check_weight("matmul", w);
  if (num_tokens < 0) throw std::invalid_argument("matmul: num_tokens is negative");
  if (num_tokens == 0) return;
  if (x == nullptr || y == nullptr) throw std::invalid_argument("matmul: x or y is null");
  if (num_tokens == 1) {
    matvec(table, w, x, y, pool);
  } else if (num_tokens <= kSmallBatchMaxTokens) {
    matmul_small_batch(table, w, x, num_tokens, y, pool);
  } else {
    matmul_tiled(table, w, x, num_tokens, y, pool);
  }
}

void matmul(const WeightMatrix& w, const float* x, int64_t num_tokens, float* y, ThreadPool& pool) {
  matmul_with_table(active_kernel_table(), w, x, num_tokens, y, pool);
}

void dequantize_row(const WeightMatrix& w, int64_t row, float* out) {
  check_weight("dequantize_row", w);
  if (row < 0 || row >= w.rows) {
    throw std::invalid_argument("dequantize_row: row " + std::to_string(row) +
                                " is out of range [0, " + std::to_string(w.rows) + ")");
  }
  if (out == nullptr) throw std::invalid_argument("dequantize_row: out is null");
  active_kernel_table().dequantize_segment(w, row, 0, w.cols, out);
}

}  // namespace mxgemma
