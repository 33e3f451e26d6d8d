// The service benchmark's harness with actctl's load generator: the echo server answers
// with exactly the sizes it is asked for (so the comparison moves the same bytes), and the
// load generator checks response sizes. Nothing here measures time. Built with
// ACTSERVE_BUILD_BENCH, as the harness is; the client side's own tests are in
// tests/client/actctl/bench_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/service/echo_server.h"
#include "client/actctl/bench/load.h"

namespace actserve {
namespace bench {
namespace {

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

class EchoServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EchoServer>> echo = EchoServer::Start(EchoServerOptions{});
    ASSERT_TRUE(echo.ok()) << echo.status();
    echo_ = *std::move(echo);
    channels_.push_back(grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", echo_->port()),
                                                  grpc::InsecureChannelCredentials(),
                                                  BenchChannelArguments()));
  }
  std::unique_ptr<EchoServer> echo_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
};

TEST_F(EchoServerTest, UnaryAndStreamAnswerWithTheAskedSize) {
  const EchoSizes sizes = EchoSizesFor(70000, 140010);
  const grpc::ByteBuffer request = ToByteBuffer(MakeEchoRequest(sizes, "payload"));
  LoadOptions options;
  options.min_calls = 3;
  options.min_time = absl::ZeroDuration();
  absl::StatusOr<LoadResult> unary =
      RunUnaryLoad(channels_, "/actserve.bench.Echo/Echo", request, 140010, options);
  ASSERT_TRUE(unary.ok()) << unary.status();
  EXPECT_EQ(unary->calls, 3);
  options.stream_messages = 5;
  options.stream_window = 2;
  options.min_calls = 5;
  absl::StatusOr<LoadResult> stream =
      RunStreamLoad(channels_, "/actserve.bench.Echo/EchoStream", request, 140010, options);
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ(stream->calls, 5);
}

TEST_F(EchoServerTest, LoadReportsAResponseOfTheWrongSize) {
  const grpc::ByteBuffer request = ToByteBuffer(MakeEchoRequest(EchoSizesFor(100, 50), "x"));
  LoadOptions options;
  options.min_calls = 1;
  options.min_time = absl::ZeroDuration();
  absl::StatusOr<LoadResult> result =
      RunUnaryLoad(channels_, "/actserve.bench.Echo/Echo", request, 51, options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace bench
}  // namespace actserve
