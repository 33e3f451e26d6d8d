// Connection management and memory bounds: option validation for the keepalive,
// connection-age and memory-quota settings, a server with a memory quota serving
// normally, and --max_connection_age making the server close a client's connection (the
// client then reconnects on its next call, which is how Kubernetes clients rebalance).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/server.h"
#include "tests/server/grpc_test_util.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::CallCompute;
using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TestServer;
using ::actserve::server::testing::ValidRequest;
using ::testing::HasSubstr;

absl::Status StartWith(void (*change)(ServerOptions*)) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  change(&options);
  return Server::Start(options).status();
}

TEST(ConnectionOptionsTest, OutOfRangeValuesAreInvalidArgumentNamingTheOption) {
  absl::Status status =
      StartWith([](ServerOptions* o) { o->memory_quota_bytes = -1; });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("memory_quota_bytes"));

  status = StartWith([](ServerOptions* o) { o->keepalive_time = absl::ZeroDuration(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("keepalive_time"));

  status = StartWith([](ServerOptions* o) { o->keepalive_timeout = absl::Seconds(-1); });
  EXPECT_THAT(status.message(), HasSubstr("keepalive_timeout"));

  status = StartWith([](ServerOptions* o) { o->max_connection_age = absl::ZeroDuration(); });
  EXPECT_THAT(status.message(), HasSubstr("max_connection_age"));

  status = StartWith(
      [](ServerOptions* o) { o->max_connection_age_grace = absl::Seconds(-1); });
  EXPECT_THAT(status.message(), HasSubstr("max_connection_age_grace"));

  status = StartWith(
      [](ServerOptions* o) { o->keepalive_min_client_interval = absl::Seconds(-1); });
  EXPECT_THAT(status.message(), HasSubstr("keepalive_min_client_interval"));
}

TEST(ConnectionOptionsTest, UnlimitedAndInfiniteValuesAreAccepted) {
  ServerOptions options;
  options.memory_quota_bytes = 0;
  options.max_connection_age = absl::InfiniteDuration();
  options.keepalive_time = absl::InfiniteDuration();
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  EXPECT_TRUE(CallCompute(server, ValidRequest()).ok());
}

TEST(ConnectionTest, ServerWithAMemoryQuotaServesWithinIt) {
  ServerOptions options;
  options.memory_quota_bytes = int64_t{64} << 20;  // 64 MiB
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(CallCompute(server, ValidRequest()).ok());
}

TEST(ConnectionTest, FullComputeQueueIsResourceExhaustedAtOnce) {
  ServerOptions options;
  options.threads = 1;
  options.max_queued = 0;  // no batch may wait for a worker: every pool batch is refused
  options.inline_bytes = 64 << 10;  // below 64 KiB of input a batch runs inline
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  v1::ComputeRequest pool_batch;
  *pool_batch.add_items() =
      testing::ReluItem({1 << 15}, std::vector<double>(1 << 15, 1.0));  // 128 KiB
  const grpc::Status refused = CallCompute(server, pool_batch);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("server overloaded"));
  // Small batches run inline and are still served.
  EXPECT_TRUE(CallCompute(server, ValidRequest()).ok());
  EXPECT_EQ(server.server->gate().inflight(), 0);
}

TEST(ConnectionTest, MaxConnectionAgeClosesTheConnectionAndTheClientReconnects) {
  ServerOptions options;
  options.max_connection_age = absl::Milliseconds(200);
  options.max_connection_age_grace = absl::Seconds(30);
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  ASSERT_TRUE(CallCompute(server, ValidRequest()).ok());
  ASSERT_EQ(server.channel->GetState(false), GRPC_CHANNEL_READY);

  // The server's GOAWAY takes the channel out of READY; bounded wait for that change.
  const auto give_up = std::chrono::system_clock::now() + std::chrono::seconds(60);
  bool left_ready = false;
  while (!left_ready && std::chrono::system_clock::now() < give_up) {
    if (!server.channel->WaitForStateChange(GRPC_CHANNEL_READY, give_up)) break;
    left_ready = server.channel->GetState(false) != GRPC_CHANNEL_READY;
  }
  EXPECT_TRUE(left_ready) << "the server never closed the aged connection";
  // The next call reconnects and is served.
  EXPECT_TRUE(CallCompute(server, ValidRequest()).ok());
}

}  // namespace
}  // namespace server
}  // namespace actserve
