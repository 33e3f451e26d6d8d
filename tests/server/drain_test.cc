// Graceful drain, in-process: once shutdown begins, health reports NOT_SERVING (and is
// still answered), new calls are served during the drain delay and refused with
// UNAVAILABLE after it, and a call in flight runs to completion within the grace. drain_process_test does the same through SIGTERM to the
// real binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/server.h"
#include "tests/server/grpc_test_util.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::CallCompute;
using ::actserve::server::testing::HealthStatus;
using ::actserve::server::testing::kNotServing;
using ::actserve::server::testing::kServing;
using ::actserve::server::testing::SafetyDeadline;
using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TestServer;
using ::actserve::server::testing::ValidRequest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Bounded poll (a minute at most): the stopping thread flips health as its first step.
void WaitForNotServing(const TestServer& server) {
  const absl::Time give_up = absl::Now() + absl::Minutes(1);
  while (HealthStatus(server.channel, "") != kNotServing && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
}

TEST(DrainTest, InFlightStreamFinishesWhileNewCallsAreRefused) {
  ServerOptions options;
  options.shutdown_grace = absl::Minutes(1);  // the stream ends long before
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  ASSERT_EQ(HealthStatus(server.channel, ""), kServing);

  grpc::ClientContext context;
  context.set_deadline(SafetyDeadline());
  auto stream = server.stub->ComputeStream(&context);
  ASSERT_TRUE(stream->Write(ValidRequest()));
  v1::ComputeResponse response;
  ASSERT_TRUE(stream->Read(&response));  // admitted

  std::thread stopper([&server] { server.server->Shutdown(); });

  // Bounded poll: the stopper thread flips health as its first step.
  WaitForNotServing(server);
  EXPECT_EQ(HealthStatus(server.channel, ""), kNotServing);
  EXPECT_EQ(HealthStatus(server.channel, "actserve.v1.ActivationService"), kNotServing);

  const grpc::Status refused = CallCompute(server, ValidRequest());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(refused.error_message(), HasSubstr("shutting down"));

  // The call in flight is still served, batch after batch, and ends OK.
  ASSERT_TRUE(stream->Write(ValidRequest()));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_THAT(testing::Values(response.results(0).output()), ElementsAre(0, 0, 0, 1, 2));
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());

  stopper.join();  // Shutdown returns once the last call is done
  EXPECT_EQ(server.server->gate().inflight(), 0);
  EXPECT_EQ(server.server->metrics().RequestCount("ComputeStream", absl::StatusCode::kOk),
            1);
}

TEST(DrainTest, DuringTheDrainDelayNewCallsAreServedWhileHealthSaysNotServing) {
  ServerOptions options;
  options.drain_delay = absl::Hours(1);  // ended by the test
  options.shutdown_grace = absl::Minutes(1);
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  ASSERT_EQ(HealthStatus(server.channel, ""), kServing);

  std::thread stopper([&server] { server.server->Shutdown(); });
  WaitForNotServing(server);
  EXPECT_EQ(HealthStatus(server.channel, ""), kNotServing);
  EXPECT_EQ(HealthStatus(server.channel, "actserve.v1.ActivationService"), kNotServing);

  // Load balancers move away meanwhile; a call still sent here is served, not refused.
  v1::ComputeResponse response;
  const grpc::Status served = CallCompute(server, ValidRequest(), &response);
  EXPECT_TRUE(served.ok()) << served.error_message();
  EXPECT_THAT(testing::Values(response.results(0).output()), ElementsAre(0, 0, 0, 1, 2));

  server.server->EndDrainDelay();
  stopper.join();  // the drain and the transport shutdown follow at once
  EXPECT_EQ(server.server->metrics().RequestCount("Compute", absl::StatusCode::kOk), 1);
  EXPECT_EQ(server.server->gate().inflight(), 0);
}

TEST(DrainTest, NegativeDrainDelayIsInvalidArgument) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.drain_delay = absl::Seconds(-1);
  const absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("drain_delay"));
}

}  // namespace
}  // namespace server
}  // namespace actserve
