// Prometheus metrics, scraped over real HTTP from the exposer: the counters move by the
// amounts a reader can work out from the calls made.
#include "server/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "server/server.h"
#include "tests/server/grpc_test_util.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::CallCompute;
using ::actserve::server::testing::HttpGet;
using ::actserve::server::testing::MetricValue;
using ::actserve::server::testing::ReluItem;
using ::actserve::server::testing::SafetyDeadline;
using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TestServer;
using ::actserve::server::testing::ValidRequest;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TestServer StartWithMetrics() {
  ServerOptions options;
  options.metrics_address = "127.0.0.1:0";
  return StartTestServer(options);
}

TEST(MetricsTest, ScrapeShowsRequestsByCodeElementsBytesAndLatency) {
  TestServer server = StartWithMetrics();
  ASSERT_NE(server.server, nullptr);
  ASSERT_GT(server.server->metrics_port(), 0);

  // Two good calls of relu on 5 float32 elements, one bad, one listing.
  ASSERT_TRUE(CallCompute(server, ValidRequest()).ok());
  ASSERT_TRUE(CallCompute(server, ValidRequest()).ok());
  v1::ComputeRequest bad;
  *bad.add_items() = ReluItem({2, 2}, {1, 2, 3});
  ASSERT_EQ(CallCompute(server, bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext context;
  context.set_deadline(SafetyDeadline());
  v1::ListActivationsResponse list;
  ASSERT_TRUE(server.stub->ListActivations(&context, {}, &list).ok());

  const std::string scrape = HttpGet(server.server->metrics_port(), "/metrics");
  ASSERT_THAT(scrape, StartsWith("HTTP/1.1 200"));
  const std::string compute = "method=\"Compute\"";
  EXPECT_EQ(MetricValue(scrape, "actserve_requests_total", {compute, "code=\"OK\""}), 2);
  EXPECT_EQ(MetricValue(scrape, "actserve_requests_total",
                        {compute, "code=\"INVALID_ARGUMENT\""}),
            1);
  EXPECT_EQ(MetricValue(scrape, "actserve_requests_total",
                        {"method=\"ListActivations\"", "code=\"OK\""}),
            1);
  EXPECT_EQ(MetricValue(scrape, "actserve_elements_total",
                        {"activation=\"relu\"", "dtype=\"float32\""}),
            10);
  EXPECT_EQ(MetricValue(scrape, "actserve_request_duration_seconds_count", {compute}), 3);
  // Every call's latency is below the largest finite bucket (60 s): all 3 are counted.
  EXPECT_EQ(MetricValue(scrape, "actserve_request_duration_seconds_bucket",
                        {compute, "le=\"60\""}),
            3);
  // Request bytes: 2 good + 1 bad requests, each more than its tensor data.
  EXPECT_GT(MetricValue(scrape, "actserve_received_bytes_total", {compute}), 2 * 20 + 12);
  // Response bytes: 2 x (output + grad_input, 20 bytes each), plus headers.
  EXPECT_GT(MetricValue(scrape, "actserve_sent_bytes_total", {compute}), 2 * 40);
  EXPECT_EQ(MetricValue(scrape, "actserve_inflight_calls"), 0);
  EXPECT_EQ(MetricValue(scrape, "actserve_pool_queue_depth"), 0);
}

TEST(MetricsTest, InflightGaugeCountsAnOpenStream) {
  TestServer server = StartWithMetrics();
  ASSERT_NE(server.server, nullptr);
  grpc::ClientContext context;
  context.set_deadline(SafetyDeadline());
  auto stream = server.stub->ComputeStream(&context);
  ASSERT_TRUE(stream->Write(ValidRequest()));
  v1::ComputeResponse response;
  ASSERT_TRUE(stream->Read(&response));  // admitted and served once
  const int port = server.server->metrics_port();
  EXPECT_EQ(MetricValue(HttpGet(port, "/metrics"), "actserve_inflight_calls"), 1);

  ASSERT_TRUE(stream->WritesDone());
  ASSERT_TRUE(stream->Finish().ok());
  const std::string scrape = HttpGet(port, "/metrics");
  EXPECT_EQ(MetricValue(scrape, "actserve_inflight_calls"), 0);
  EXPECT_EQ(MetricValue(scrape, "actserve_requests_total",
                        {"method=\"ComputeStream\"", "code=\"OK\""}),
            1);
  EXPECT_EQ(MetricValue(scrape, "actserve_elements_total",
                        {"activation=\"relu\"", "dtype=\"float32\""}),
            5);
}

TEST(MetricsTest, RefusedCallsAreCountedWithTheirCode) {
  ServerOptions options;
  options.metrics_address = "127.0.0.1:0";
  options.max_elements = 4;
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  EXPECT_EQ(CallCompute(server, ValidRequest()).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(server.server->metrics().RequestCount("Compute",
                                                  absl::StatusCode::kResourceExhausted),
            1);
  EXPECT_EQ(MetricValue(HttpGet(server.server->metrics_port(), "/metrics"),
                        "actserve_requests_total",
                        {"method=\"Compute\"", "code=\"RESOURCE_EXHAUSTED\""}),
            1);
}

TEST(MetricsTest, EachMethodAndCodeHasItsOwnCountAndOddCodesCountAsUnknown) {
  ServerMetrics metrics([] { return 0; }, [] { return size_t{0}; });
  for (int i = 0; i < 3; ++i) {
    metrics.RecordCall("Compute", absl::StatusCode::kOk, absl::Microseconds(50), 10, 20);
  }
  metrics.RecordCall("ComputeStream", absl::StatusCode::kOk, absl::Seconds(1), 10, 20);
  metrics.RecordCall("Compute", absl::StatusCode::kUnavailable, absl::Microseconds(5), 0, 0);
  // Not a canonical code: counted, under UNKNOWN, rather than dropped.
  metrics.RecordCall("Compute", static_cast<absl::StatusCode>(99), absl::Microseconds(5), 0, 0);
  EXPECT_EQ(metrics.RequestCount("Compute", absl::StatusCode::kOk), 3);
  EXPECT_EQ(metrics.RequestCount("ComputeStream", absl::StatusCode::kOk), 1);
  EXPECT_EQ(metrics.RequestCount("Compute", absl::StatusCode::kUnavailable), 1);
  EXPECT_EQ(metrics.RequestCount("Compute", absl::StatusCode::kUnknown), 1);
  EXPECT_EQ(metrics.RequestCount("ListActivations", absl::StatusCode::kOk), 0);
}

TEST(MetricsTest, NoExposerWithoutAnAddress) {
  TestServer server = StartTestServer();
  ASSERT_NE(server.server, nullptr);
  EXPECT_EQ(server.server->metrics_port(), 0);
  ASSERT_TRUE(CallCompute(server, ValidRequest()).ok());
  // Still counted, for whoever reads them in-process.
  EXPECT_EQ(server.server->metrics().RequestCount("Compute", absl::StatusCode::kOk), 1);
}

TEST(MetricsTest, BusyMetricsAddressIsUnavailable) {
  TestServer first = StartWithMetrics();
  ASSERT_NE(first.server, nullptr);
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.metrics_address = "127.0.0.1:" + std::to_string(first.server->metrics_port());
  const absl::Status status = Server::Start(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("metrics"));
}

}  // namespace
}  // namespace server
}  // namespace actserve
