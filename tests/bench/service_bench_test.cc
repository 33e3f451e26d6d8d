// The service benchmark's pieces that carry its correctness: the echo server answers with
// exactly the sizes it is asked for (so the comparison moves the same bytes), the load
// generator checks response sizes, and the results CSV has the agreed format. Nothing here
// measures time.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/service/echo_server.h"
#include "bench/service/load.h"
#include "bench/service/results_csv.h"
#include "bench/service/service_bench.h"

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

TEST(EchoSizesTest, MessagesHaveExactlyTheAskedWireSizes) {
  for (size_t request : {size_t{16}, size_t{1030}, size_t{65600}, size_t{16777300}}) {
    for (size_t response : {size_t{0}, size_t{12}, size_t{2100}, size_t{33554500}}) {
      const EchoSizes sizes = EchoSizesFor(request, response);
      EXPECT_EQ(MakeEchoRequest(sizes, "abc").size(), request) << request << " " << response;
      if (response >= 2) {
        // 1 tag byte, the length's varint, the payload.
        const size_t varint = sizes.response_payload < 128     ? 1
                              : sizes.response_payload < 16384 ? 2
                              : sizes.response_payload < (1u << 21) ? 3 : 4;
        EXPECT_EQ(1 + varint + sizes.response_payload, response) << response;
      }
    }
  }
}

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

TEST(ResultsCsvTest, HeaderAndRowsInTheAgreedFormat) {
  ServiceBenchRow row;
  row.rpc = "unary";
  row.payload_bytes = 65536;
  row.mode = "forward_backward";
  row.concurrency = 4;
  row.actserve = {512.25, 120.4, 980.6};
  row.echo = {400.5, 150.0, 1000.0};
  row.echo_default = {300.125, 170.2, 1200.7};
  EXPECT_EQ(FormatServiceCsv({row}),
            "rpc,payload_bytes,mode,concurrency,actserve_mb_s,echo_mb_s,actserve_p50_us,"
            "echo_p50_us,actserve_p99_us,echo_p99_us\n"
            "unary,65536,forward_backward,4,512.250,400.500,120,150,981,1000\n");
  EXPECT_EQ(FormatEchoDefaultCsv({row}),
            "rpc,payload_bytes,mode,concurrency,echo_default_mb_s,echo_default_p50_us,"
            "echo_default_p99_us,echo_mb_s\n"
            "unary,65536,forward_backward,4,300.125,170,1201,400.500\n");
}

TEST(QuantileTest, NearestRank) {
  std::vector<double> values = {5, 1, 4, 2, 3};
  EXPECT_EQ(Quantile(values, 0.5), 3);
  EXPECT_EQ(Quantile(values, 0.99), 5);
  std::vector<double> none;
  EXPECT_EQ(Quantile(none, 0.5), 0);
}

TEST(RepeatedFlagValuesTest, EveryTargetInOrder) {
  std::vector<std::string> args = {"actctl", "--target=a:1", "bench", "--target", "b:2",
                                   "-target=c:3", "--targets=x", "--", "--target=d:4"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  EXPECT_EQ(RepeatedFlagValues(static_cast<int>(argv.size()), argv.data(), "target"),
            (std::vector<std::string>{"a:1", "b:2", "c:3"}));
}

}  // namespace
}  // namespace bench
}  // namespace actserve
