// A fixed set of worker threads with a bounded queue of tasks.
//
// The server runs large computations here so that gRPC's own threads stay free to
// receive and send. The queue is bounded so that overload is refused at once
// (TrySchedule returns false) instead of queueing without limit.
//
//   ThreadPool pool({.threads = 4, .max_queued = 64});
//   if (!pool.TrySchedule([] { Work(); })) { /* overloaded */ }
#ifndef ACTSERVE_SRC_THREAD_POOL_H_
#define ACTSERVE_SRC_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
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

}  // namespace actserve

#endif  // ACTSERVE_SRC_THREAD_POOL_H_
