// src/thread_pool.h: every accepted task runs; TrySchedule refuses once max_queued tasks
// wait (the workers are held on a Notification so the queue fills deterministically); the
// destructor runs what it accepted; ParallelFor covers the range in fixed chunks and stops
// when cancelled.
#include "src/thread_pool.h"

#include <atomic>
#include <mutex>
#include <set>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace actserve {
namespace {

ThreadPoolOptions Options(int threads, size_t max_queued) {
  ThreadPoolOptions o;
  o.threads = threads;
  o.max_queued = max_queued;
  return o;
}

TEST(ThreadPoolTest, AllTasksRun) {
  ThreadPool pool(Options(3, 1024));
  EXPECT_EQ(pool.threads(), 3);
  std::atomic<int> sum{0};
  absl::BlockingCounter done(500);
  for (int i = 1; i <= 500; ++i) {
    ASSERT_TRUE(pool.TrySchedule([&, i] {
      sum += i;
      done.DecrementCount();
    }));
  }
  done.Wait();
  EXPECT_EQ(sum.load(), 500 * 501 / 2);
}

TEST(ThreadPoolTest, DefaultThreadsIsAtLeastOne) {
  ThreadPool pool(Options(0, 4));
  EXPECT_GE(pool.threads(), 1);
}

TEST(ThreadPoolTest, TryScheduleRefusesWhenTheQueueIsFull) {
  constexpr int kThreads = 2;
  constexpr size_t kMaxQueued = 3;
  ThreadPool pool(Options(kThreads, kMaxQueued));
  absl::Notification release;
  absl::BlockingCounter started(kThreads);
  std::atomic<int> ran{0};
  // Occupy every worker, and wait until each has taken its task off the queue.
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(pool.TrySchedule([&] {
      started.DecrementCount();
      release.WaitForNotification();
      ++ran;
    }));
  }
  started.Wait();
  EXPECT_EQ(pool.queued(), 0u);
  // Now exactly kMaxQueued more fit.
  for (size_t i = 0; i < kMaxQueued; ++i) {
    EXPECT_TRUE(pool.TrySchedule([&] { ++ran; })) << i;
    EXPECT_EQ(pool.queued(), i + 1);
  }
  bool refused_ran = false;
  EXPECT_FALSE(pool.TrySchedule([&] { refused_ran = true; }));
  EXPECT_EQ(pool.queued(), kMaxQueued);
  release.Notify();
  // Once the queue drains, scheduling works again.
  absl::Notification last;
  while (!pool.TrySchedule([&] { last.Notify(); })) std::this_thread::yield();
  last.WaitForNotification();
  EXPECT_FALSE(refused_ran);
}

TEST(ThreadPoolTest, DestructorRunsAcceptedTasks) {
  std::atomic<int> ran{0};
  absl::Notification release;
  {
    ThreadPool pool(Options(1, 100));
    ASSERT_TRUE(pool.TrySchedule([&] { release.WaitForNotification(); }));
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.TrySchedule([&] { ++ran; }));
    release.Notify();
  }  // joins after running all 50
  EXPECT_EQ(ran.load(), 50);
}

TEST(ParallelForTest, CoversTheRangeInFixedChunks) {
  ThreadPool pool(Options(2, 64));
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{99}, int64_t{100}, int64_t{1001}}) {
      std::mutex mu;
      std::set<int64_t> chunks;
      std::vector<int> hits(n, 0);
      const absl::Status st = ParallelFor(p, n, 100, nullptr,
                                          [&](int64_t chunk, int64_t begin, int64_t end) {
                                            std::lock_guard<std::mutex> lock(mu);
                                            EXPECT_EQ(begin, chunk * 100);
                                            EXPECT_EQ(end, std::min(n, begin + 100));
                                            EXPECT_TRUE(chunks.insert(chunk).second);
                                            for (int64_t i = begin; i < end; ++i) ++hits[i];
                                          });
      EXPECT_TRUE(st.ok()) << st;
      EXPECT_EQ(static_cast<int64_t>(chunks.size()), (n + 99) / 100) << n;
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "n=" << n << " i=" << i;
    }
  }
}

TEST(ParallelForTest, StopsWhenCancelled) {
  ThreadPool pool(Options(2, 64));
  std::atomic<bool> cancelled{true};
  std::atomic<int> calls{0};
  const absl::Status st =
      ParallelFor(&pool, 1000, 10, &cancelled, [&](int64_t, int64_t, int64_t) { ++calls; });
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled) << st;
  EXPECT_EQ(calls.load(), 0);
  // Cancelled midway: the rest is skipped.
  cancelled = false;
  calls = 0;
  const absl::Status mid = ParallelFor(nullptr, 1000, 10, &cancelled,
                                       [&](int64_t chunk, int64_t, int64_t) {
                                         ++calls;
                                         if (chunk == 4) cancelled = true;
                                       });
  EXPECT_EQ(mid.code(), absl::StatusCode::kCancelled) << mid;
  EXPECT_EQ(calls.load(), 5);
  // A range of one chunk (run on the caller without helpers) is refused just the same.
  cancelled = true;
  calls = 0;
  const absl::Status one =
      ParallelFor(&pool, 10, 10, &cancelled, [&](int64_t, int64_t, int64_t) { ++calls; });
  EXPECT_EQ(one.code(), absl::StatusCode::kCancelled) << one;
  EXPECT_EQ(calls.load(), 0);
}

}  // namespace
}  // namespace actserve
