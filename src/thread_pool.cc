#include "src/thread_pool.h"

#include <algorithm>
#include <memory>
#include <utility>

namespace actserve {

ThreadPool::ThreadPool(ThreadPoolOptions options) : max_queued_(options.max_queued) {
  int threads = options.threads;
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  workers_.reserve(threads);
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
}

bool ThreadPool::TrySchedule(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= max_queued_) return false;
  queue_.push_back(std::move(task));
  return true;
}

size_t ThreadPool::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void ThreadPool::WorkerLoop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](ThreadPool* pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool->mu_) {
            return pool->stopping_ || !pool->queue_.empty();
          },
          this));
      // Drain what was accepted before stopping: a caller was promised it would run.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

namespace {

// Shared by the caller of ParallelFor and the helper tasks it queues. Helpers hold it by
// shared_ptr because a helper may start after the caller has returned: it then finds no
// chunk left and touches nothing else.
struct ParallelForState {
  ParallelForState(int64_t n, int64_t grain,
                   absl::FunctionRef<void(int64_t, int64_t, int64_t)> fn,
                   const std::atomic<bool>* cancelled)
      : n(n), grain(grain), chunks((n + grain - 1) / grain), fn(fn), cancelled(cancelled) {}

  // Claims and runs chunks until none is left.
  void Work() {
    while (true) {
      const int64_t chunk = next_chunk.fetch_add(1, std::memory_order_relaxed);
      if (chunk >= chunks) return;
      if (cancelled != nullptr && cancelled->load(std::memory_order_relaxed)) {
        was_cancelled.store(true, std::memory_order_relaxed);
      } else {
        const int64_t begin = chunk * grain;
        fn(chunk, begin, std::min(n, begin + grain));
      }
      absl::MutexLock lock(&mu);
      ++chunks_done;
    }
  }

  const int64_t n;
  const int64_t grain;
  const int64_t chunks;
  // Valid until every chunk is done: only a thread holding an unfinished chunk calls it.
  const absl::FunctionRef<void(int64_t, int64_t, int64_t)> fn;
  const std::atomic<bool>* const cancelled;
  std::atomic<int64_t> next_chunk{0};
  std::atomic<bool> was_cancelled{false};
  absl::Mutex mu;
  int64_t chunks_done ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace

absl::Status ParallelFor(ThreadPool* pool, int64_t n, int64_t grain,
                         const std::atomic<bool>* cancelled,
                         absl::FunctionRef<void(int64_t chunk, int64_t begin, int64_t end)> fn) {
  if (n <= 0) return absl::OkStatus();
  if (grain <= 0) grain = n;
  if (n <= grain) {
    // One chunk: run it here, without the shared state the helpers would need (small
    // calls are most calls, and they should not pay an allocation and a lock for it).
    if (cancelled != nullptr && cancelled->load(std::memory_order_relaxed)) {
      return absl::CancelledError("computation cancelled");
    }
    fn(0, 0, n);
    return absl::OkStatus();
  }
  auto state = std::make_shared<ParallelForState>(n, grain, fn, cancelled);
  if (pool != nullptr && state->chunks > 1) {
    const int64_t helpers = std::min<int64_t>(pool->threads(), state->chunks - 1);
    for (int64_t i = 0; i < helpers; ++i) {
      // A full queue just means fewer helpers: the caller does the rest.
      if (!pool->TrySchedule([state] { state->Work(); })) break;
    }
  }
  state->Work();
  {
    absl::MutexLock lock(&state->mu);
    state->mu.Await(absl::Condition(
        +[](ParallelForState* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
          return s->chunks_done == s->chunks;
        },
        state.get()));
  }
  if (state->was_cancelled.load(std::memory_order_relaxed)) {
    return absl::CancelledError("computation cancelled");
  }
  return absl::OkStatus();
}

}  // namespace actserve
