// Deadlines and cancellation stop the work: a softmax batch is held on its worker (by the
// engine's test hook) until its call is cancelled, by its deadline or by its client, and
// the server's own outcome proves that the engine then stopped rather than finishing.
// The worker is then free: the next call on the same single-worker server is served.
// Nothing here is timed, and nothing depends on how fast the kernels are: waits are
// bounded polls for a state the server must reach.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/server.h"
#include "tests/server/grpc_test_util.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::CallCompute;
using ::actserve::server::testing::SafetyDeadline;
using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TestServer;

// 64 Ki float64 elements (512 KiB, over inline_bytes, so the batch goes to the worker
// pool and its call has a cancellation flag) of softmax over rows of 1024.
constexpr int64_t kRowLength = 1024;
constexpr int64_t kRows = 64;
constexpr int64_t kElements = kRows * kRowLength;
constexpr auto kShortDeadline = std::chrono::milliseconds(700);

v1::ComputeRequest BigRequest() {
  v1::ComputeRequest request;
  v1::ComputeItem* item = request.add_items();
  item->set_mode(v1::MODE_FORWARD);
  item->mutable_activation()->mutable_softmax();
  v1::Tensor* input = item->mutable_input();
  input->set_dtype(v1::DTYPE_FLOAT64);
  input->add_shape(kRows);
  input->add_shape(kRowLength);
  std::string* data = input->mutable_data();
  data->resize(static_cast<size_t>(kElements) * sizeof(double));
  for (int64_t i = 0; i < kElements; ++i) {
    const double x = static_cast<double>(i % 2001) / 100.0 - 10.0;  // -10 .. 10
    std::memcpy(data->data() + i * sizeof(double), &x, sizeof(double));
  }
  return request;
}

// A batch large enough to go to the compute pool (over inline_bytes) but quick.
v1::ComputeRequest PoolRequest() {
  v1::ComputeRequest request;
  v1::ComputeItem* item = request.add_items();
  item->mutable_activation()->mutable_relu();
  v1::Tensor* input = item->mutable_input();
  input->set_dtype(v1::DTYPE_FLOAT32);
  input->add_shape(1 << 16);
  input->mutable_data()->assign(size_t{4} << 16, '\0');
  return request;
}

// Polls until `condition` holds, for at most a minute; true when it held.
template <typename Condition>
bool Eventually(Condition condition) {
  const absl::Time give_up = absl::Now() + absl::Minutes(1);
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// How many softmax items reached the engine (and are held there until cancelled).
struct HeldWork {
  std::atomic<int> entered{0};
};

// One worker; every softmax item waits on it until its call's cancellation flag is set
// (other items, such as PoolRequest's relu, pass straight through).
TestServer StartOneWorkerServer(HeldWork* held) {
  ServerOptions options;
  options.threads = 1;
  options.metrics_address = "127.0.0.1:0";
  options.max_message_bytes = kElements * sizeof(double) + (int64_t{1} << 20);
  options.engine_before_item_for_testing = [held](const ComputeItem& item,
                                                  const std::atomic<bool>* cancelled) {
    if (item.activation.kind != ActivationKind::kSoftmax) return;
    held->entered.fetch_add(1);
    ASSERT_NE(cancelled, nullptr) << "a pool batch has a cancellation flag";
    EXPECT_TRUE(Eventually([&] { return cancelled->load(); }));
  };
  return StartTestServer(options);
}

TEST(DeadlineTest, ShortDeadlineStopsTheWorkAndTheNextCallIsServed) {
  HeldWork held;
  TestServer server = StartOneWorkerServer(&held);
  ASSERT_NE(server.server, nullptr);
  ASSERT_TRUE(CallCompute(server, PoolRequest()).ok());  // connected and warm
  const v1::ComputeRequest big = BigRequest();

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kShortDeadline);
  v1::ComputeResponse response;
  const grpc::Status status = server.stub->Compute(&context, big, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(held.entered.load(), 1);

  // The server's own outcome: the engine saw the flag before its chunks and stopped, and
  // the call was classified by its deadline, not as a client cancel. Had the engine run
  // to the end, the server would have recorded OK.
  ServerMetrics& metrics = server.server->metrics();
  EXPECT_TRUE(Eventually([&] {
    return metrics.RequestCount("Compute", absl::StatusCode::kDeadlineExceeded) == 1;
  }));
  EXPECT_EQ(metrics.RequestCount("Compute", absl::StatusCode::kOk), 1);  // the warm-up
  EXPECT_TRUE(Eventually([&] { return server.server->gate().inflight() == 0; }));

  // The one worker is free again: a pool-bound call is served.
  v1::ComputeResponse next;
  ASSERT_TRUE(CallCompute(server, PoolRequest(), &next).ok());
  EXPECT_EQ(next.results(0).output().data().size(), size_t{4} << 16);
  EXPECT_EQ(server.server->gate().inflight(), 0);
}

TEST(DeadlineTest, DeadlinePassingWhileQueuedMeansNoWorkAndCancelFreesTheWorker) {
  HeldWork held;
  TestServer server = StartOneWorkerServer(&held);
  ASSERT_NE(server.server, nullptr);
  const v1::ComputeRequest big = BigRequest();

  // A occupies the only worker until the test cancels it.
  grpc::ClientContext a_context;
  a_context.set_deadline(SafetyDeadline());
  v1::ComputeResponse a_response;
  grpc::Status a_status;
  absl::Notification a_done;
  server.stub->async()->Compute(&a_context, &big, &a_response, [&](grpc::Status s) {
    a_status = std::move(s);
    a_done.Notify();
  });
  // A holds the only worker: a batch scheduled from now on queues behind it.
  ASSERT_TRUE(Eventually([&] { return held.entered.load() == 1; }));

  // B waits for the worker behind A, and its deadline passes there.
  grpc::ClientContext b_context;
  b_context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  v1::ComputeResponse b_response;
  EXPECT_EQ(server.stub->Compute(&b_context, PoolRequest(), &b_response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(a_done.HasBeenNotified());

  // Cancelling A stops its work; the worker then reaches B, whose flag is already set.
  a_context.TryCancel();
  a_done.WaitForNotification();
  EXPECT_EQ(a_status.error_code(), grpc::StatusCode::CANCELLED);
  ServerMetrics& metrics = server.server->metrics();
  EXPECT_TRUE(Eventually([&] {
    return metrics.RequestCount("Compute", absl::StatusCode::kCancelled) == 1 &&
           metrics.RequestCount("Compute", absl::StatusCode::kDeadlineExceeded) == 1;
  }));
  EXPECT_EQ(metrics.RequestCount("Compute", absl::StatusCode::kOk), 0);
  EXPECT_TRUE(Eventually([&] { return server.server->gate().inflight() == 0; }));
  EXPECT_TRUE(CallCompute(server, PoolRequest()).ok());
}

TEST(DeadlineTest, ClientCancelStopsTheWorkAndFreesTheWorker) {
  HeldWork held;
  TestServer server = StartOneWorkerServer(&held);
  ASSERT_NE(server.server, nullptr);
  const v1::ComputeRequest big = BigRequest();

  grpc::ClientContext context;
  context.set_deadline(SafetyDeadline());
  v1::ComputeResponse response;
  grpc::Status status;
  absl::Notification done;
  server.stub->async()->Compute(&context, &big, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  // The whole request arrived and the batch is on the worker.
  ASSERT_TRUE(Eventually([&] { return held.entered.load() == 1; }));
  context.TryCancel();
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);

  ServerMetrics& metrics = server.server->metrics();
  EXPECT_TRUE(Eventually(
      [&] { return metrics.RequestCount("Compute", absl::StatusCode::kCancelled) == 1; }));
  EXPECT_EQ(metrics.RequestCount("Compute", absl::StatusCode::kOk), 0);
  EXPECT_TRUE(Eventually([&] { return server.server->gate().inflight() == 0; }));
  EXPECT_TRUE(CallCompute(server, PoolRequest()).ok());
}

TEST(DeadlineTest, CancelledStreamStopsItsBatch) {
  HeldWork held;
  TestServer server = StartOneWorkerServer(&held);
  ASSERT_NE(server.server, nullptr);
  grpc::ClientContext context;
  context.set_deadline(SafetyDeadline());
  auto stream = server.stub->ComputeStream(&context);
  ASSERT_TRUE(stream->Write(BigRequest()));
  ASSERT_TRUE(Eventually([&] { return held.entered.load() == 1; }));
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ServerMetrics& metrics = server.server->metrics();
  EXPECT_TRUE(Eventually([&] {
    return metrics.RequestCount("ComputeStream", absl::StatusCode::kCancelled) == 1;
  }));
  EXPECT_TRUE(Eventually([&] { return server.server->gate().inflight() == 0; }));
  EXPECT_TRUE(CallCompute(server, PoolRequest()).ok());
}

}  // namespace
}  // namespace server
}  // namespace actserve
