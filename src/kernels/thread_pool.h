// A fixed pool of worker threads for splitting kernel loops; created once and passed by reference.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mxgemma {

class ThreadPool {
 public:
  // num_threads <= 0 picks the number of hardware threads.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return int(workers_.size()) + 1; }

  // Calls body(begin, end) over disjoint ranges covering [0, count), in chunks of at least
  // min_chunk items, on all threads including the caller, and returns when every range is done.
  // A call from inside a body runs serially on the calling thread. Calls from other threads wait.
  void parallel_for(int64_t count, int64_t min_chunk,
                    const std::function<void(int64_t begin, int64_t end)>& body);

 private:
  void worker_loop(int index);
  void run_share(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  // Written by the caller before it bumps generation_, read by workers after they see the bump.
  const std::function<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t count_ = 0;
  int64_t chunk_ = 0;
  std::atomic<int64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
  // Serializes callers from different threads; each call uses the whole pool.
  std::mutex call_mutex_;
};

}  // namespace mxgemma
