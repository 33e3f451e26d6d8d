// Deadlines and cancellation stop the work: a batch sized to take seconds on the engine
// is given a short deadline (or cancelled by its client), and the server's own outcome
// proves that the engine stopped between chunks rather than finishing. The worker is then
// free: the next call on the same single-worker server is served. Nothing here is timed;
// waits are bounded polls for a state the server must reach.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
using ::actserve::server::testing::HttpGet;
using ::actserve::server::testing::MetricValue;
using ::actserve::server::testing::SafetyDeadline;
using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TestServer;

// 16 Mi float64 elements (128 MiB) of softmax over rows of 1024, forward only: on the
// current engine (softmax gathers each row into doubles and runs scalar code) about 2 s
// on one worker, while the message crosses the loopback in a fraction of the deadline
// used below. If a faster engine makes this finish inside the deadline, grow kRows
// (max_message_bytes below follows it).
constexpr int64_t kRowLength = 1024;
constexpr int64_t kRows = 16 * 1024;
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

TestServer StartOneWorkerServer() {
  ServerOptions options;
  options.threads = 1;
  options.metrics_address = "127.0.0.1:0";
  options.max_message_bytes = kElements * sizeof(double) + (int64_t{1} << 20);
  return StartTestServer(options);
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

TEST(DeadlineTest, ShortDeadlineStopsTheWorkAndTheNextCallIsServed) {
  TestServer server = StartOneWorkerServer();
  ASSERT_NE(server.server, nullptr);
  ASSERT_TRUE(CallCompute(server, PoolRequest()).ok());  // connected and warm
  const v1::ComputeRequest big = BigRequest();

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kShortDeadline);
  v1::ComputeResponse response;
  const grpc::Status status = server.stub->Compute(&context, big, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  // The server's own outcome: the engine saw the flag between chunks and stopped, and
  // the call was classified by its deadline, not as a client cancel. Had the engine run
  // to the end, the server would have recorded OK.
  ServerMetrics& metrics = server.server->metrics();
  EXPECT_TRUE(Eventually([&] {
    return metrics.RequestCount("Compute", absl::StatusCode::kDeadlineExceeded) == 1;
  }));
  EXPECT_EQ(metrics.RequestCount("Compute", absl::StatusCode::kOk), 1);  // the warm-up
  EXPECT_TRUE(Eventually([&] { return server.server->service().inflight() == 0; }));

  // The one worker is free again: a pool-bound call is served.
  v1::ComputeResponse next;
  ASSERT_TRUE(CallCompute(server, PoolRequest(), &next).ok());
  EXPECT_EQ(next.results(0).output().data().size(), size_t{4} << 16);
  EXPECT_EQ(server.server->service().inflight(), 0);
}

TEST(DeadlineTest, DeadlinePassingWhileQueuedMeansNoWorkAndCancelFreesTheWorker) {
  TestServer server = StartOneWorkerServer();
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
  // A is on the worker once it has queued the helper that would share its chunks (the
  // worker is A's, so the helper waits): a batch scheduled from now on queues behind it.
  const int metrics_port = server.server->metrics_port();
  ASSERT_TRUE(Eventually([&] {
    return MetricValue(HttpGet(metrics_port, "/metrics"), "actserve_pool_queue_depth") >= 1;
  }));

  // B waits for the worker behind A, and its deadline passes there.
  grpc::ClientContext b_context;
  b_context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  v1::ComputeResponse b_response;
  EXPECT_EQ(server.stub->Compute(&b_context, PoolRequest(), &b_response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_FALSE(a_done.HasBeenNotified())
      << "the big request finished before B's deadline: grow kRows";

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
  EXPECT_TRUE(Eventually([&] { return server.server->service().inflight() == 0; }));
  EXPECT_TRUE(CallCompute(server, PoolRequest()).ok());
}

TEST(DeadlineTest, ClientCancelStopsTheWorkAndFreesTheWorker) {
  TestServer server = StartOneWorkerServer();
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
  // Admitted means the whole request arrived and the batch went to the worker.
  ASSERT_TRUE(Eventually([&] { return server.server->service().inflight() == 1; }));
  context.TryCancel();
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);

  ServerMetrics& metrics = server.server->metrics();
  EXPECT_TRUE(Eventually(
      [&] { return metrics.RequestCount("Compute", absl::StatusCode::kCancelled) == 1; }));
  EXPECT_EQ(metrics.RequestCount("Compute", absl::StatusCode::kOk), 0);
  EXPECT_TRUE(Eventually([&] { return server.server->service().inflight() == 0; }));
  EXPECT_TRUE(CallCompute(server, PoolRequest()).ok());
}

TEST(DeadlineTest, CancelledStreamStopsItsBatch) {
  TestServer server = StartOneWorkerServer();
  ASSERT_NE(server.server, nullptr);
  grpc::ClientContext context;
  context.set_deadline(SafetyDeadline());
  auto stream = server.stub->ComputeStream(&context);
  ASSERT_TRUE(stream->Write(BigRequest()));
  ASSERT_TRUE(Eventually([&] { return server.server->service().inflight() == 1; }));
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ServerMetrics& metrics = server.server->metrics();
  EXPECT_TRUE(Eventually([&] {
    return metrics.RequestCount("ComputeStream", absl::StatusCode::kCancelled) == 1;
  }));
  EXPECT_TRUE(Eventually([&] { return server.server->service().inflight() == 0; }));
  EXPECT_TRUE(CallCompute(server, PoolRequest()).ok());
}

}  // namespace
}  // namespace server
}  // namespace actserve
