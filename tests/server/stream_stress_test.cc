// ComputeStream under churn: many streams at once, each sending valid and invalid batches
// back to back (small ones computed inline, large ones on the pool) without waiting for
// replies, and some cancelled by the client mid-stream. Every stream must end with the
// status its traffic calls for, and the server must go on serving. Its real value is
// under the sanitizers (`make test-asan` runs the server suite with ASan and UBSan): a
// stream that finished while a read or write was decided but not yet started (fixed in
// ComputeStreamReactor::Advance) would touch a deleted reactor, which ASan reports.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::CallCompute;
using ::actserve::server::testing::ReluItem;
using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TestServer;
using ::actserve::server::testing::ValidRequest;

v1::ComputeRequest LargeRequest() {
  v1::ComputeRequest request;
  // 512 KiB of float32: above the inline threshold, so it runs on the compute pool.
  *request.add_items() = ReluItem({131072}, std::vector<double>(131072, -0.5));
  return request;
}

v1::ComputeRequest InvalidRequest() {
  v1::ComputeRequest request;
  *request.add_items() = ReluItem({2}, {1, 2});
  request.mutable_items(0)->mutable_input()->set_data("12345");  // 5 bytes for 8
  return request;
}

enum class Ending { kWritesDone, kInvalidBatch, kCancel };

// One stream: `batches` batches (valid, small or large), then the ending. Returns the
// status code the stream ended with.
grpc::StatusCode RunStream(const TestServer& server, int batches, Ending ending,
                           std::mt19937* rng) {
  grpc::ClientContext context;
  auto stream = server.stub->ComputeStream(&context);
  std::atomic<int> replies{0};
  std::thread reader([&] {
    v1::ComputeResponse response;
    while (stream->Read(&response)) replies.fetch_add(1);
  });
  for (int i = 0; i < batches; ++i) {
    if (!stream->Write((*rng)() % 3 == 0 ? LargeRequest() : ValidRequest())) break;
  }
  switch (ending) {
    case Ending::kWritesDone:
      stream->WritesDone();
      break;
    case Ending::kInvalidBatch:
      stream->Write(InvalidRequest());
      // More batches after the bad one: the server may be finishing meanwhile.
      for (int i = 0; i < 3; ++i) {
        if (!stream->Write(ValidRequest())) break;
      }
      stream->WritesDone();
      break;
    case Ending::kCancel:
      context.TryCancel();
      break;
  }
  reader.join();
  const grpc::Status status = stream->Finish();
  if (ending == Ending::kWritesDone) EXPECT_EQ(replies.load(), batches);
  return status.error_code();
}

TEST(StreamStressTest, ValidInvalidAndCancelledStreamsBackToBack) {
  ServerOptions options;
  options.threads = 2;
  options.stream_window = 2;
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);

  constexpr int kThreads = 4;
  constexpr int kStreamsPerThread = 40;
  std::vector<std::thread> threads;
  std::atomic<int> unexpected{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) + 1);
      for (int s = 0; s < kStreamsPerThread; ++s) {
        const Ending ending = static_cast<Ending>(rng() % 3);
        const int batches = static_cast<int>(rng() % 6);
        const grpc::StatusCode code = RunStream(server, batches, ending, &rng);
        const bool expected =
            ending == Ending::kWritesDone     ? code == grpc::StatusCode::OK
            : ending == Ending::kInvalidBatch ? code == grpc::StatusCode::INVALID_ARGUMENT
                                              : code == grpc::StatusCode::CANCELLED;
        if (!expected) {
          unexpected.fetch_add(1);
          ADD_FAILURE() << "stream " << t << "/" << s << " ending "
                        << static_cast<int>(ending) << " ended with code " << code;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(unexpected.load(), 0);

  v1::ComputeResponse response;
  const grpc::Status status = CallCompute(server, ValidRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.results_size(), 1);
}

}  // namespace
}  // namespace server
}  // namespace actserve
