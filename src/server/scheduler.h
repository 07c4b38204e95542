// The scheduler of the server: one thread owns the model (which runs one forward pass at a time)
// and a fixed set of slots, each with its own KV cache. Every step decodes one token for all
// generating slots in one batched pass (continuous batching), then runs one prefill chunk of a
// newly admitted prompt, so a long prompt delays running streams by one chunk at most. Image and
// audio soft tokens arrive encoded with the job; each prefill chunk takes its slice of them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/media_prompt.h"
#include "engine/sampler.h"
#include "model/gemma4_text.h"
#include "text/tokenizer.h"

namespace mxgemma::server {

enum class JobFinish {
  stop,       // a stop token or stop string
  length,     // max_tokens or the end of the context
  cancelled,  // the client went away
  timed_out,  // the request ran past its deadline
  failed,     // the model threw; JobStream::error() has the message
};

struct JobStats {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;  // forced and sampled tokens, the stop token excluded
  double queue_seconds = 0.0;     // from submission to admission into a slot
  double time_to_first_token = 0.0;  // from submission
  double decode_seconds = 0.0;       // from the first generated token to the last
};

// The output channel of one job: the scheduler thread appends text, an HTTP thread reads it.
class JobStream {
 public:
  // Scheduler side.
  void append(const std::string& text);
  void finish(JobFinish finish, const JobStats& stats, std::string error = "");

  // Asks the scheduler to stop the job and free its slot at its next step.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // Waits up to `timeout` for new text or the end of the job. Moves the text received since the
  // last call into `text` and returns true once the job has finished and all text was taken.
  bool wait(std::string& text, std::chrono::milliseconds timeout);

  // Valid once wait() returned true.
  JobFinish finish_reason() const { return finish_; }
  const JobStats& stats() const { return stats_; }
  const std::string& error() const { return error_; }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string pending_;
  bool finished_ = false;
  std::atomic<bool> cancelled_{false};
  JobFinish finish_ = JobFinish::stop;
  JobStats stats_;
  std::string error_;
};

struct JobRequest {
  std::string id;  // for logs
  std::vector<int32_t> prompt;
  // The soft tokens of the prompt's image and audio placeholders, encoded before submission;
  // null for a text prompt. `prompt` equals media->tokens.
  std::shared_ptr<const MediaPrompt> media;
  int64_t max_tokens = 0;  // further bounded by the free context
  SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop_strings;
  // Generated first, in place of sampled tokens: how tool_choice forces the opening of a call.
  std::vector<int32_t> forced_tokens;
  // The functions a tool call may name. When not empty, a call the model opens (or the forced
  // opening) is decoded under ToolCallGrammar, so it always parses and names one of them.
  std::vector<std::string> tool_names;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct SchedulerOptions {
  int parallel = 1;              // slots, i.e. sequences that generate together
  int64_t context_size = 4096;   // positions per slot: prompt plus generated tokens
  int64_t prefill_chunk = 256;   // prompt tokens per prefill pass between decode steps
  size_t max_queued = 16;        // requests waiting for a slot before submit() rejects more
};

class Scheduler {
 public:
  // Allocates the KV caches of every slot and starts the scheduler thread.
  Scheduler(Gemma4TextModel& model, const Tokenizer& tokenizer, const SchedulerOptions& options);
  // Cancels every job and joins the thread.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job. Returns nullptr when max_queued jobs already wait for a slot. Throws
  // std::invalid_argument when the prompt is empty or does not fit the context with room for one
  // generated token, or the sampling parameters are invalid.
  std::shared_ptr<JobStream> submit(JobRequest request);

  const SchedulerOptions& options() const { return options_; }
  int busy_slots() const { return busy_slots_.load(); }
  size_t queued() const;

 private:
  struct ActiveJob;
  struct Slot {
    KVCache cache;
    std::unique_ptr<ActiveJob> job;
  };
  struct QueuedJob {
    JobRequest request;
    std::shared_ptr<JobStream> stream;
    std::chrono::steady_clock::time_point submitted;
  };

  void run();
  bool admit_queued_jobs();
  void drop_finished_slots();
  void decode_step();
  void prefill_step();
  // Picks the next token from `logits` and streams its text; ends the job when it stops.
  void accept_logits(Slot& slot, std::span<float> logits);
  void end_job(Slot& slot, JobFinish finish, std::string error = "");
  int32_t pick_token(ActiveJob& job, std::span<float> logits, bool& forced);
  void advance_grammar(ActiveJob& job, int32_t token);
  // The decoded text of one token, cached; "<" (never allowed inside a call) for an unknown id.
  const std::string& token_text(int32_t token);

  Gemma4TextModel& model_;
  const Tokenizer& tokenizer_;
  SchedulerOptions options_;
  std::vector<Slot> slots_;
  size_t next_prefill_slot_ = 0;  // round-robin start, so prompts share prefill passes fairly

  mutable std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::deque<QueuedJob> queue_;
  bool stopping_ = false;
  std::atomic<int> busy_slots_{0};

  std::vector<int32_t> batch_tokens_;
  std::vector<KVCache*> batch_caches_;
  std::vector<size_t> batch_slots_;
  std::vector<float> logits_;
  std::vector<std::string> token_texts_;
  std::vector<bool> token_text_known_;
  std::thread thread_;
};

}  // namespace mxgemma::server
