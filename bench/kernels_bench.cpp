// Kernel throughput for Gemma 4 E2B shapes on every ISA level this CPU runs, next to the machine's
// streaming read bandwidth, so decode efficiency reads as a fraction of it.
//
//   mxgemma_kernels_bench [--benchmark_filter=REGEX] [--threads=N]
//
// Counters: weight_GBps is weight bytes read (WeightMatrix::storage_bytes) per second. GFLOPs
// counts 2 * rows * cols * tokens per product, and read_GBps is the streaming read rate.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "kernels/linear.h"
#include "kernels/thread_pool.h"
#include "kernels/vector_ops.h"
#include "util/half.h"

namespace mxgemma {
namespace {

int g_threads = 0;

ThreadPool& pool() {
  static ThreadPool instance(g_threads);
  return instance;
}

// Weights with storage that outlives the benchmarks; values are random but finite. The decode
// matrices come in several copies, cycled per iteration, so the reads miss the 32 MiB L3 cache as
// the layers of a real model do.
struct BenchWeights {
  std::vector<WeightMatrix> copies;
  std::vector<uint32_t> words;
  std::vector<uint8_t> scales;
  std::vector<uint16_t> halves;
};

BenchWeights make_mxfp4(int64_t rows, int64_t cols, int num_copies) {
  BenchWeights b;
  std::mt19937 rng(1);
  const int64_t words_per_copy = rows * cols / 8;
  const int64_t scales_per_copy = rows * cols / 32;
  b.words.resize(size_t(words_per_copy * num_copies));
  for (uint32_t& word : b.words) word = uint32_t(rng());
  b.scales.resize(size_t(scales_per_copy * num_copies));
  for (uint8_t& s : b.scales) s = uint8_t(120 + rng() % 8);
  for (int copy = 0; copy < num_copies; ++copy) {
    WeightMatrix w;
    w.format = WeightFormat::mxfp4;
    w.rows = rows;
    w.cols = cols;
    w.bits = 4;
    w.group_size = 32;
    w.data = b.words.data() + copy * words_per_copy;
    w.e8m0_scales = b.scales.data() + copy * scales_per_copy;
    b.copies.push_back(w);
  }
  return b;
}

BenchWeights make_f16(int64_t rows, int64_t cols) {
  BenchWeights b;
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(-0.1f, 0.1f);
  std::vector<uint16_t> pattern(4099);
  for (uint16_t& h : pattern) h = float_to_fp16(dist(rng));
  b.halves.resize(size_t(rows * cols));
  for (size_t i = 0; i < b.halves.size(); ++i) b.halves[i] = pattern[i % pattern.size()];
  WeightMatrix w;
  w.format = WeightFormat::f16;
  w.rows = rows;
  w.cols = cols;
  w.data = b.halves.data();
  b.copies.push_back(w);
  return b;
}

void run_matmul(benchmark::State& state, const KernelTable* table, const BenchWeights* weights,
                int64_t num_tokens) {
  const WeightMatrix& first = weights->copies.front();
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(size_t(num_tokens * first.cols));
  for (float& v : x) v = dist(rng);
  std::vector<float> y(size_t(num_tokens * first.rows));
  size_t copy = 0;
  for (auto _ : state) {
    matmul_with_table(*table, weights->copies[copy], x.data(), num_tokens, y.data(), pool());
    copy = (copy + 1) % weights->copies.size();
    benchmark::DoNotOptimize(y.data());
  }
  const double iterations = double(state.iterations());
  state.counters["weight_GBps"] = benchmark::Counter(
      iterations * double(first.storage_bytes()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOPs"] = benchmark::Counter(
      iterations * 2.0 * double(first.rows) * double(first.cols) * double(num_tokens) / 1e9,
      benchmark::Counter::kIsRate);
  state.SetLabel(std::string(table->name) + ", " + std::to_string(pool().num_threads()) +
                 " threads");
}

// Reads a 1 GiB buffer once per iteration, split across the pool, with the vectorized
// sum_squares(): the rate decode cannot beat when weights stream from memory.
void memory_read(benchmark::State& state) {
  constexpr int64_t kBytes = int64_t(1) << 30;
  constexpr int64_t kFloats = kBytes / 4;
  constexpr int64_t kChunkFloats = 1 << 16;
  static std::unique_ptr<float[]> buffer = [] {
    std::unique_ptr<float[]> b(new float[size_t(kFloats)]);
    for (int64_t i = 0; i < kFloats; ++i) b[size_t(i)] = float(i % 7) * 0.25f;
    return b;
  }();
  std::vector<float> sums(size_t(kFloats / kChunkFloats), 0.0f);
  for (auto _ : state) {
    pool().parallel_for(kFloats / kChunkFloats, 16, [&](int64_t begin, int64_t end) {
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        sums[size_t(chunk)] = sum_squares(buffer.get() + chunk * kChunkFloats, kChunkFloats);
      }
    });
    benchmark::DoNotOptimize(sums.data());
  }
  state.counters["read_GBps"] = benchmark::Counter(
      double(state.iterations()) * double(kBytes) / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(kernel_isa()) + ", " + std::to_string(pool().num_threads()) +
                 " threads");
}

void register_all() {
  benchmark::RegisterBenchmark("memory_read_1GiB", memory_read)->UseRealTime()->MinTime(1.0);

  // 16 copies of 5 MB each: 80 MB, well past the L3 cache.
  static const BenchWeights gate = make_mxfp4(6144, 1536, 16);
  static const BenchWeights down = make_mxfp4(1536, 6144, 16);
  static const BenchWeights head = make_f16(262144, 1536);
  for (const char* isa : {"scalar", "avx2", "avx512", "neon"}) {
    const KernelTable* table = nullptr;
    try {
      table = &kernel_table_for(isa);
    } catch (const std::runtime_error&) {
      continue;  // Not available on this CPU or build.
    }
    const std::string suffix = std::string("/") + isa;
    benchmark::RegisterBenchmark(("matvec_mxfp4_6144x1536" + suffix).c_str(), run_matmul, table,
                                 &gate, int64_t(1))
        ->UseRealTime()
        ->MinTime(0.5);
    benchmark::RegisterBenchmark(("matvec_mxfp4_1536x6144" + suffix).c_str(), run_matmul, table,
                                 &down, int64_t(1))
        ->UseRealTime()
        ->MinTime(0.5);
    benchmark::RegisterBenchmark(("matvec_f16_head_262144x1536" + suffix).c_str(), run_matmul,
                                 table, &head, int64_t(1))
        ->UseRealTime()
        ->MinTime(1.0);
    // Four sequences decoded together, as the server's batched decode runs them.
    benchmark::RegisterBenchmark(("batch4_mxfp4_6144x1536" + suffix).c_str(), run_matmul, table,
                                 &gate, int64_t(4))
        ->UseRealTime()
        ->MinTime(0.5);
    benchmark::RegisterBenchmark(("batch4_f16_head_262144x1536" + suffix).c_str(), run_matmul,
                                 table, &head, int64_t(4))
        ->UseRealTime()
        ->MinTime(1.0);
    for (int64_t tokens : {8, 16, 17, 32}) {
      benchmark::RegisterBenchmark(("batch" + std::to_string(tokens) + "_mxfp4_6144x1536" + suffix).c_str(),
                                   run_matmul, table, &gate, tokens)
          ->UseRealTime()
          ->MinTime(0.3);
    }
    benchmark::RegisterBenchmark(("prefill512_mxfp4_6144x1536" + suffix).c_str(), run_matmul, table,
                                 &gate, int64_t(512))
        ->UseRealTime()
        ->MinTime(1.0);
  }
}

}  // namespace
}  // namespace mxgemma

int main(int argc, char** argv) {
  // --threads=N sets the pool size (default: all hardware threads); the rest goes to the library.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      mxgemma::g_threads = std::atoi(argv[i] + 10);
    } else {
      args.push_back(argv[i]);
    }
  }
  int count = int(args.size());
  benchmark::Initialize(&count, args.data());
  mxgemma::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
