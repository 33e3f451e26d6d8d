// A fixed set of worker threads with a bounded queue of tasks, and ParallelFor, which
// splits a range into fixed chunks and runs them on the pool and the calling thread.
//
// The server runs large computations here so that gRPC's own threads stay free to
// receive and send. The queue is bounded so that overload is refused at once
// (TrySchedule returns false) instead of queueing without limit.
//
//   ThreadPool pool(ThreadPoolOptions{});
//   if (!pool.TrySchedule([] { Work(); })) { /* overloaded */ }
//   absl::Status status = ParallelFor(&pool, n, 1 << 16, &cancelled,
//                                     [&](int64_t chunk, int64_t begin, int64_t end) {...});
#ifndef ACTSERVE_SRC_THREAD_POOL_H_
#define ACTSERVE_SRC_THREAD_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace actserve {

struct ThreadPoolOptions {
  // Worker threads. 0: one per core (std::thread::hardware_concurrency, at least 1).
  int threads = 0;
  // Tasks waiting for a worker, beyond those running, before TrySchedule refuses.
  size_t max_queued = 1024;
};

// Thread-safe. The destructor runs every task already accepted, then joins the workers.
class ThreadPool {
 public:
  explicit ThreadPool(ThreadPoolOptions options);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task` to run on a worker. Returns false, without running it, when
  // max_queued tasks are already waiting.
  bool TrySchedule(std::function<void()> task);

  int threads() const { return static_cast<int>(workers_.size()); }
  // Tasks accepted but not yet started.
  size_t queued() const;

 private:
  void WorkerLoop();

  const size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

// Runs `fn(chunk, begin, end)` for the chunks [0, grain), [grain, 2 grain), ... of
// [0, n), on the calling thread and on idle workers of `pool` (nullptr: the calling
// thread only), and returns when every chunk is done. The chunking depends only on `n`
// and `grain`, never on the number of threads, so a caller that keeps per-chunk partial
// results and combines them in chunk order gets the same bits for any thread count.
// A range of at most one chunk runs inline. Before each chunk, `cancelled` (may be
// nullptr) is read; once it is true the remaining chunks are skipped and the result is
// Cancelled. Safe to call from a worker of the same pool: the caller works through the
// chunks itself and never waits for a helper that has not started.
absl::Status ParallelFor(ThreadPool* pool, int64_t n, int64_t grain,
                         const std::atomic<bool>* cancelled,
                         absl::FunctionRef<void(int64_t chunk, int64_t begin, int64_t end)> fn);

}  // namespace actserve

#endif  // ACTSERVE_SRC_THREAD_POOL_H_
