#include "server/scheduler.h"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "engine/generator.h"
#include "engine/tool_call_grammar.h"
#include "util/log.h"

namespace mxgemma::server {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

void JobStream::append(const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_ += text;
  }
  changed_.notify_all();
}

void JobStream::finish(JobFinish finish, const JobStats& stats, std::string error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finish_ = finish;
    stats_ = stats;
    error_ = std::move(error);
    finished_ = true;
  }
  changed_.notify_all();
}

bool JobStream::wait(std::string& text, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return finished_ || !pending_.empty(); });
  text.clear();
  text.swap(pending_);
  return finished_;
}

struct Scheduler::ActiveJob {
  ActiveJob(QueuedJob queued, const Tokenizer& tokenizer)
      : request(std::move(queued.request)),
        stream(std::move(queued.stream)),
        submitted(queued.submitted),
        admitted(Clock::now()),
        sampler(request.sampling),
        decoder(tokenizer, /*skip_special=*/false),
        matcher(request.stop_strings),
        history(request.prompt) {}

  JobRequest request;
  std::shared_ptr<JobStream> stream;
  Clock::time_point submitted;
  Clock::time_point admitted;
  Clock::time_point first_token;
  Sampler sampler;
  StreamingDecoder decoder;
  StopStringMatcher matcher;
  std::vector<int32_t> history;  // prompt and generated tokens, for the penalties
  size_t prefilled = 0;          // prompt tokens already in the cache
  int32_t next_input = -1;       // the sampled token that the next decode step feeds
  int64_t generated = 0;
  int64_t budget = 0;
  std::optional<ToolCallGrammar> grammar;  // set while a tool call is being decoded
};

Scheduler::Scheduler(Gemma4TextModel& model, const Tokenizer& tokenizer, const SchedulerOptions& options)
    : model_(model), tokenizer_(tokenizer), options_(options) {
  if (options_.parallel < 1) throw std::invalid_argument("invalid parallel: must be >= 1 slot");
  if (options_.context_size < 2) throw std::invalid_argument("invalid context size: must be >= 2 tokens");
  if (options_.prefill_chunk < 1) throw std::invalid_argument("invalid prefill chunk: must be >= 1 token");
  slots_.reserve(size_t(options_.parallel));
  for (int i = 0; i < options_.parallel; ++i) {
    slots_.push_back(Slot{model_.make_cache(options_.context_size, options_.prefill_chunk), nullptr});
  }
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    stopping_ = true;
  }
  queue_changed_.notify_all();
  thread_.join();
}

std::shared_ptr<JobStream> Scheduler::submit(JobRequest request) {
  if (request.prompt.empty()) throw std::invalid_argument("the prompt is empty: nothing to generate from");
  if (int64_t(request.prompt.size()) >= options_.context_size) {
    throw std::invalid_argument("the prompt is " + std::to_string(request.prompt.size()) +
                                " tokens, which does not fit the context size of " +
                                std::to_string(options_.context_size) + " tokens");
  }
  validate(request.sampling);
  auto stream = std::make_shared<JobStream>();
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (queue_.size() >= options_.max_queued) return nullptr;
    queue_.push_back(QueuedJob{std::move(request), stream, Clock::now()});
  }
  queue_changed_.notify_all();
  return stream;
}

size_t Scheduler::queued() const {
  std::lock_guard<std::mutex> lock(queue_mutex_);
  return queue_.size();
}

void Scheduler::run() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(queue_mutex_);
      // Sleep only when no slot has work; a cancelled queued job is dropped at admission.
      queue_changed_.wait(lock, [&] { return stopping_ || !queue_.empty() || busy_slots_.load() > 0; });
      if (stopping_) break;
    }
    admit_queued_jobs();
    drop_finished_slots();
    decode_step();
    prefill_step();
  }
  for (Slot& slot : slots_) {
    if (slot.job) end_job(slot, JobFinish::cancelled);
  }
  std::lock_guard<std::mutex> lock(queue_mutex_);
  for (QueuedJob& queued : queue_) queued.stream->finish(JobFinish::cancelled, JobStats{});
  queue_.clear();
}

bool Scheduler::admit_queued_jobs() {
  bool admitted = false;
  for (Slot& slot : slots_) {
    if (slot.job) continue;
    QueuedJob queued;
    {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      // Jobs whose client left or whose deadline passed while waiting never take a slot.
      while (!queue_.empty() && (queue_.front().stream->cancelled() || Clock::now() >= queue_.front().request.deadline)) {
        QueuedJob& dropped = queue_.front();
        JobStats stats;
        stats.prompt_tokens = int64_t(dropped.request.prompt.size());
        stats.queue_seconds = seconds_between(dropped.submitted, Clock::now());
        dropped.stream->finish(dropped.stream->cancelled() ? JobFinish::cancelled : JobFinish::timed_out, stats);
        queue_.pop_front();
      }
      if (queue_.empty()) break;
      queued = std::move(queue_.front());
      queue_.pop_front();
    }
    slot.cache.clear();
    slot.job = std::make_unique<ActiveJob>(std::move(queued), tokenizer_);
    ActiveJob& job = *slot.job;
    job.budget = std::min<int64_t>(job.request.max_tokens, options_.context_size - int64_t(job.request.prompt.size()));
    busy_slots_.fetch_add(1);
    admitted = true;
    MXG_LOG_DEBUG("request %s: admitted to slot %zu after %.3f s in the queue, prompt %zu tokens",
                  job.request.id.c_str(), size_t(&slot - slots_.data()), seconds_between(job.submitted, job.admitted),
                  job.request.prompt.size());
  }
  return admitted;
}

void Scheduler::drop_finished_slots() {
  const Clock::time_point now = Clock::now();
  for (Slot& slot : slots_) {
    if (!slot.job) continue;
    if (slot.job->stream->cancelled()) {
      end_job(slot, JobFinish::cancelled);
    } else if (now >= slot.job->request.deadline) {
      end_job(slot, JobFinish::timed_out);
    }
  }
}

void Scheduler::decode_step() {
  batch_tokens_.clear();
  batch_caches_.clear();
  batch_slots_.clear();
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].job && slots_[i].job->next_input >= 0) {
      batch_tokens_.push_back(slots_[i].job->next_input);
      batch_caches_.push_back(&slots_[i].cache);
      batch_slots_.push_back(i);
    }
  }
  if (batch_tokens_.empty()) return;

  try {
    model_.decode_batch(batch_tokens_, batch_caches_, logits_);
  } catch (const std::exception& error) {
    MXG_LOG_ERROR("decode step of %zu sequences failed: %s", batch_tokens_.size(), error.what());
    for (size_t index : batch_slots_) end_job(slots_[index], JobFinish::failed, error.what());
    return;
  }
  const size_t vocab = size_t(model_.vocab_size());
  for (size_t row = 0; row < batch_slots_.size(); ++row) {
    Slot& slot = slots_[batch_slots_[row]];
    slot.job->next_input = -1;
    accept_logits(slot, std::span<float>(logits_.data() + row * vocab, vocab));
  }
}

void Scheduler::prefill_step() {
  for (size_t offset = 0; offset < slots_.size(); ++offset) {
    const size_t index = (next_prefill_slot_ + offset) % slots_.size();
    Slot& slot = slots_[index];
    if (!slot.job || slot.job->prefilled >= slot.job->request.prompt.size()) continue;

    ActiveJob& job = *slot.job;
    const size_t count = std::min(job.request.prompt.size() - job.prefilled, size_t(options_.prefill_chunk));
    const bool last_chunk = job.prefilled + count == job.request.prompt.size();
    const std::span<const int32_t> chunk(job.request.prompt.data() + job.prefilled, count);
    const Gemma4TextModel::Logits which = last_chunk ? Gemma4TextModel::Logits::last : Gemma4TextModel::Logits::none;
    try {
      if (job.request.media) {
        const auto soft_tokens = job.request.media->soft_tokens(int64_t(job.prefilled), int64_t(count));
        model_.forward(chunk, slot.cache, which, logits_, soft_tokens);
      } else {
        model_.forward(chunk, slot.cache, which, logits_);
      }
    } catch (const std::exception& error) {
      MXG_LOG_ERROR("request %s: prefill failed: %s", job.request.id.c_str(), error.what());
      end_job(slot, JobFinish::failed, error.what());
      return;
    }
    job.prefilled += count;
    if (last_chunk) accept_logits(slot, std::span<float>(logits_.data(), size_t(model_.vocab_size())));
    next_prefill_slot_ = (index + 1) % slots_.size();
    return;
  }
}

const std::string& Scheduler::token_text(int32_t token) {
  static const std::string kRejected = "<";
  if (token < 0) return kRejected;
  if (size_t(token) >= token_texts_.size()) {
    token_texts_.resize(size_t(token) + 1);
    token_text_known_.resize(size_t(token) + 1, false);
  }
  if (!token_text_known_[size_t(token)]) {
    try {
      token_texts_[size_t(token)] = tokenizer_.decode(std::span<const int32_t>(&token, 1));
    } catch (const std::out_of_range&) {
      token_texts_[size_t(token)] = kRejected;
    }
    token_text_known_[size_t(token)] = true;
  }
  return token_texts_[size_t(token)];
}

int32_t Scheduler::pick_token(ActiveJob& job, std::span<float> logits, bool& forced) {
  forced = size_t(job.generated) < job.request.forced_tokens.size();
  if (forced) return job.request.forced_tokens[size_t(job.generated)];
  if (!job.grammar) return job.sampler.sample(logits, job.history);

  // With two tokens left, a comma would open a key or element that cannot be finished.
  const bool allow_comma = job.budget - job.generated > 2;
  const auto& stop_ids = job.request.stop_token_ids;
  return job.sampler.sample_allowed(logits, job.history, [&](int32_t token) {
    return std::find(stop_ids.begin(), stop_ids.end(), token) == stop_ids.end() &&
           job.grammar->accepts(token_text(token), allow_comma);
  });
}

void Scheduler::advance_grammar(ActiveJob& job, int32_t token) {
  if (job.request.tool_names.empty()) return;
  const std::string& text = token_text(token);
  if (!job.grammar) {
    if (text != "<|tool_call>") return;
    job.grammar.emplace(job.request.tool_names);
  }
  try {
    job.grammar->advance(text);
  } catch (const std::invalid_argument& error) {
    // Only forced tokens skip the grammar's check; an opening that does not fit it is a bug.
    MXG_LOG_WARN("request %s: %s; the rest of the call is decoded unconstrained", job.request.id.c_str(), error.what());
    job.grammar.reset();
    return;
  }
  if (job.grammar->closed()) job.grammar.reset();
}

void Scheduler::accept_logits(Slot& slot, std::span<float> logits) {
  ActiveJob& job = *slot.job;
  if (job.budget <= 0) {
    end_job(slot, JobFinish::length);
    return;
  }
  bool forced = false;
  const int32_t token = pick_token(job, logits, forced);
  if (job.generated == 0) job.first_token = Clock::now();
  if (token < 0) {
    // No token continues the tool call; end_job closes it.
    end_job(slot, JobFinish::stop);
    return;
  }

  const auto& stop_ids = job.request.stop_token_ids;
  if (!forced && std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
    end_job(slot, JobFinish::stop);
    return;
  }
  ++job.generated;
  job.history.push_back(token);
  advance_grammar(job, token);
  bool stopped = false;
  job.stream->append(job.matcher.push(job.decoder.push(token), stopped));
  if (stopped) {
    end_job(slot, JobFinish::stop);
    return;
  }
  if (job.generated >= job.budget) {
    end_job(slot, JobFinish::length);
    return;
  }
  job.next_input = token;
}

void Scheduler::end_job(Slot& slot, JobFinish finish, std::string error) {
  ActiveJob& job = *slot.job;
  if (finish == JobFinish::stop || finish == JobFinish::length) {
    // Flush the held-back bytes; a stop string may still complete in them.
    bool stopped = false;
    job.stream->append(job.matcher.push(job.decoder.finish(), stopped));
    if (stopped) finish = JobFinish::stop;
    else job.stream->append(job.matcher.finish());
  }
  if (job.grammar && finish != JobFinish::cancelled && finish != JobFinish::failed) {
    // A call cut short by max_tokens, a stop string or the deadline is closed, so it still parses.
    job.stream->append(job.grammar->closing_text());
  }
  const Clock::time_point now = Clock::now();
  JobStats stats;
  stats.prompt_tokens = int64_t(job.request.prompt.size());
  stats.completion_tokens = job.generated;
  stats.queue_seconds = seconds_between(job.submitted, job.admitted);
  if (job.generated > 0) {
    stats.time_to_first_token = seconds_between(job.submitted, job.first_token);
    stats.decode_seconds = seconds_between(job.first_token, now);
  }
  job.stream->finish(finish, stats, std::move(error));
  slot.job.reset();
  busy_slots_.fetch_sub(1);
}

}  // namespace mxgemma::server
