// The server around the service: start-up errors, health checking and reflection (the
// standard services that generic gRPC tools use), robustness to undecodable bytes, and
// shutdown. Health and reflection are called generically with hand-encoded protobuf,
// because Debian ships no generated client code for either.
#include "server/server.h"

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "tests/server/grpc_test_util.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::CallCompute;
using ::actserve::server::testing::FromByteBuffer;
using ::actserve::server::testing::HealthStatus;
using ::actserve::server::testing::kServing;
using ::actserve::server::testing::RawUnaryCall;
using ::actserve::server::testing::ToByteBuffer;
using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TestServer;
using ::actserve::server::testing::ValidRequest;
using ::testing::HasSubstr;

TEST(ServerTest, HealthReportsServing) {
  TestServer server = StartTestServer();
  ASSERT_NE(server.server, nullptr);
  EXPECT_EQ(HealthStatus(server.channel, ""), kServing);
  EXPECT_EQ(HealthStatus(server.channel, "actserve.v1.ActivationService"), kServing);
}

TEST(ServerTest, HealthOfAnUnknownServiceIsNotFound) {
  TestServer server = StartTestServer();
  ASSERT_NE(server.server, nullptr);
  std::string request = "\x0A\x07nothing";
  const grpc::Status status =
      RawUnaryCall(server.channel, "/grpc.health.v1.Health/Check", request, nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

// Waits for the next event on `cq`; returns its ok flag.
bool Await(grpc::CompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  if (!cq->Next(&tag, &ok)) return false;
  return ok;
}

TEST(ServerTest, ReflectionListsTheServices) {
  TestServer server = StartTestServer();
  ASSERT_NE(server.server, nullptr);
  grpc::GenericStub stub(server.channel);
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  ASSERT_NE(call, nullptr);
  void* const tag = reinterpret_cast<void*>(1);
  call->StartCall(tag);
  ASSERT_TRUE(Await(&cq));
  // ServerReflectionRequest {string list_services = 7;} set to "": tag 0x3A, length 0.
  call->Write(ToByteBuffer(std::string("\x3A\x00", 2)), tag);
  ASSERT_TRUE(Await(&cq));
  call->WritesDone(tag);
  ASSERT_TRUE(Await(&cq));
  grpc::ByteBuffer reply;
  call->Read(&reply, tag);
  ASSERT_TRUE(Await(&cq));
  grpc::Status status;
  call->Finish(&status, tag);
  ASSERT_TRUE(Await(&cq));
  EXPECT_TRUE(status.ok()) << status.error_message();
  // The ListServiceResponse names every service as a plain string.
  const std::string bytes = FromByteBuffer(reply);
  EXPECT_THAT(bytes, HasSubstr("actserve.v1.ActivationService"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  EXPECT_THAT(bytes, HasSubstr("grpc.reflection.v1alpha.ServerReflection"));
}

TEST(ServerTest, UndecodableRequestBytesFailTheCallNotTheServer) {
  TestServer server = StartTestServer();
  ASSERT_NE(server.server, nullptr);
  // Field 1 (items) claims 100 bytes but only 2 follow.
  const grpc::Status status =
      RawUnaryCall(server.channel, "/actserve.v1.ActivationService/Compute",
                   "\x0A\x64\x01\x02", nullptr);
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(CallCompute(server, ValidRequest()).ok());
}

TEST(ServerTest, PortZeroBindsAnEphemeralPort) {
  TestServer server = StartTestServer();
  ASSERT_NE(server.server, nullptr);
  EXPECT_GT(server.server->port(), 0);
}

TEST(ServerTest, AddressInUseIsUnavailable) {
  TestServer first = StartTestServer();
  ASSERT_NE(first.server, nullptr);
  ServerOptions options;
  options.address = "127.0.0.1:" + std::to_string(first.server->port());
  absl::StatusOr<std::unique_ptr<Server>> second = Server::Start(options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(CallCompute(first, ValidRequest()).ok());
}

TEST(ServerTest, InvalidOptionsAreRejected) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.max_inflight = -1;
  EXPECT_EQ(Server::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.max_inflight = 1;
  options.threads = -2;
  EXPECT_EQ(Server::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ServerTest, ShutdownCancelsCallsStillOpenAfterTheGrace) {
  ServerOptions options;
  options.shutdown_grace = absl::ZeroDuration();
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  grpc::ClientContext context;
  auto stream = server.stub->ComputeStream(&context);
  ASSERT_TRUE(stream->Write(ValidRequest()));
  v1::ComputeResponse response;
  ASSERT_TRUE(stream->Read(&response));  // the stream is open and admitted

  std::thread stopper([&server] { server.server->Shutdown(); });
  // Shutdown cancels the open stream; the client sees the stream end, not a hang.
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_FALSE(stream->Finish().ok());
  stopper.join();
  server.server->Wait();      // returns at once: already shut down
  server.server->Shutdown();  // idempotent
  EXPECT_EQ(server.server->gate().inflight(), 0);
}

TEST(ServerTest, NoNewCallsAfterShutdown) {
  TestServer server = StartTestServer();
  ASSERT_NE(server.server, nullptr);
  v1::ComputeResponse response;
  ASSERT_TRUE(CallCompute(server, ValidRequest(), &response).ok());
  server.server->Shutdown();
  // No new calls after shutdown.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  EXPECT_FALSE(server.stub->Compute(&context, ValidRequest(), &response).ok());
}

}  // namespace
}  // namespace server
}  // namespace actserve
