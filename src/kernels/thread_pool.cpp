#include "kernels/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace mxgemma {
namespace {

thread_local bool t_inside_pool = false;

// Decode runs hundreds of short loops per token, and waking a sleeping thread costs tens of
// microseconds, so threads spin this many pauses (tens of microseconds) before they block.
constexpr int kSpinIterations = 2000;

inline void cpu_pause() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  start_cv_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::run_share(int index) {
  // Static split: thread `index` takes chunks index, index + n, index + 2n, ...
  const int64_t n = num_threads();
  for (int64_t begin = int64_t(index) * chunk_; begin < count_; begin += n * chunk_) {
    (*body_)(begin, std::min(count_, begin + chunk_));
  }
}

void ThreadPool::worker_loop(int index) {
  int64_t seen = 0;
  while (true) {
    int64_t current = generation_.load(std::memory_order_acquire);
    for (int spin = 0; current == seen && spin < kSpinIterations && !stopping_; ++spin) {
      cpu_pause();
      current = generation_.load(std::memory_order_acquire);
    }
    if (current == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      start_cv_.wait(lock, [&] { return stopping_ || generation_.load() != seen; });
      current = generation_.load();
    }
    if (stopping_) return;
    seen = current;

    t_inside_pool = true;
    run_share(index);
    t_inside_pool = false;
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t count, int64_t min_chunk,
                              const std::function<void(int64_t, int64_t)>& body) {
  if (count <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  const int64_t n = num_threads();
  if (n == 1 || count <= min_chunk || t_inside_pool) {
    body(0, count);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  body_ = &body;
  count_ = count;
  chunk_ = std::max(min_chunk, (count + n - 1) / n);
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  {
    // Bumped under the lock so that a worker about to block cannot miss it.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();

  t_inside_pool = true;
  run_share(0);
  t_inside_pool = false;

  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0 && spin < kSpinIterations; ++spin) {
    cpu_pause();
  }
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
}

}  // namespace mxgemma
