// Bad input against a real server: each case asserts the status code, that the message
// names the exact place ("items[1].input"), and that the server then still answers a
// valid call. The bad item is items[1], after a valid items[0], so that the place is
// not trivially the first item and nothing of items[0] is returned.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "google/protobuf/unknown_field_set.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::CallCompute;
using ::actserve::server::testing::F32;
using ::actserve::server::testing::F64;
using ::actserve::server::testing::ReluItem;
using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TestServer;
using ::actserve::server::testing::ValidRequest;
using ::actserve::server::testing::Values;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartTestServer();
    ASSERT_NE(server_.server, nullptr);
  }

  // Sends [valid relu item, `bad`]; expects `code` and a message starting with the place
  // and containing `detail`; then checks that a valid call still succeeds.
  void ExpectRejected(const v1::ComputeItem& bad, grpc::StatusCode code,
                      const std::string& place, const std::string& detail = "") {
    v1::ComputeRequest request;
    *request.add_items() = ReluItem({2}, {-1, 1});
    *request.add_items() = bad;
    v1::ComputeResponse response;
    const grpc::Status status = CallCompute(server_, request, &response);
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    EXPECT_THAT(status.error_message(), StartsWith(place));
    EXPECT_THAT(status.error_message(), HasSubstr(detail));
    EXPECT_EQ(response.results_size(), 0) << "nothing is partially applied";
    ExpectServerStillWorks();
  }

  void ExpectServerStillWorks() {
    v1::ComputeResponse response;
    const grpc::Status status = CallCompute(server_, ValidRequest(), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.results_size(), 1);
    EXPECT_THAT(Values(response.results(0).output()), ElementsAre(0, 0, 0, 1, 2));
  }

  TestServer server_;
};

constexpr grpc::StatusCode kInvalid = grpc::StatusCode::INVALID_ARGUMENT;

TEST_F(BadInputTest, ShapeAndDataLengthDisagree) {
  ExpectRejected(ReluItem({2, 2}, {1, 2, 3}), kInvalid, "items[1].input",
                 "12 bytes of data, but shape [2,2] float32 needs 16");
}

TEST_F(BadInputTest, NegativeDimension) {
  ExpectRejected(ReluItem({2, -1}, {}), kInvalid, "items[1].input", "negative");
}

TEST_F(BadInputTest, DimensionsOverflow) {
  ExpectRejected(ReluItem({int64_t{1} << 40, int64_t{1} << 40}, {}), kInvalid,
                 "items[1].input");
}

TEST_F(BadInputTest, DTypeUnspecified) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.mutable_input()->set_dtype(v1::DTYPE_UNSPECIFIED);
  ExpectRejected(item, kInvalid, "items[1].input.dtype", "unspecified");
}

TEST_F(BadInputTest, UnknownDTypeNumber) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.mutable_input()->set_dtype(static_cast<v1::DType>(9));
  ExpectRejected(item, kInvalid, "items[1].input.dtype", "unknown dtype number 9");
}

TEST_F(BadInputTest, ActivationUnset) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.clear_activation();
  ExpectRejected(item, kInvalid, "items[1].activation", "no activation set");
}

TEST_F(BadInputTest, ActivationUnknownToThisServer) {
  // What a newer client's 25th activation looks like to this server: an unknown field.
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.mutable_activation()->clear_kind();
  item.mutable_activation()
      ->GetReflection()
      ->MutableUnknownFields(item.mutable_activation())
      ->AddLengthDelimited(99, "");
  ExpectRejected(item, kInvalid, "items[1].activation", "that this server knows");
}

TEST_F(BadInputTest, SoftplusBetaZero) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.mutable_activation()->mutable_softplus()->set_beta(0);
  ExpectRejected(item, kInvalid, "items[1].activation: softplus", "beta");
}

TEST_F(BadInputTest, CeluAlphaZero) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.mutable_activation()->mutable_celu()->set_alpha(0);
  ExpectRejected(item, kInvalid, "items[1].activation: celu", "alpha");
}

TEST_F(BadInputTest, HardtanhMinAboveMax) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.mutable_activation()->mutable_hardtanh()->set_min_val(2);
  item.mutable_activation()->mutable_hardtanh()->set_max_val(1);
  ExpectRejected(item, kInvalid, "items[1].activation: hardtanh", "min_val");
}

TEST_F(BadInputTest, SoftshrinkNegativeLambd) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.mutable_activation()->mutable_softshrink()->set_lambd(-0.5);
  ExpectRejected(item, kInvalid, "items[1].activation: softshrink", "lambd");
}

TEST_F(BadInputTest, NonFiniteParameter) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.mutable_activation()->mutable_leaky_relu()->set_negative_slope(
      std::numeric_limits<double>::quiet_NaN());
  ExpectRejected(item, kInvalid, "items[1].activation: leaky_relu", "negative_slope");
}

TEST_F(BadInputTest, ThresholdMissingValue) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.mutable_activation()->mutable_threshold()->set_threshold(0.5);
  ExpectRejected(item, kInvalid, "items[1].activation: threshold", "value");
}

TEST_F(BadInputTest, GeluApproximateUnknownNumber) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.mutable_activation()->mutable_gelu()->set_approximate(
      static_cast<v1::GeluApproximate>(5));
  ExpectRejected(item, kInvalid, "items[1].activation: gelu", "approximate");
}

TEST_F(BadInputTest, GradOutputWrongShape) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  *item.mutable_grad_output() = F32({3}, {1, 1, 1});
  ExpectRejected(item, kInvalid, "items[1].grad_output", "shape [3]");
}

TEST_F(BadInputTest, GradOutputWrongDType) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  *item.mutable_grad_output() = F64({2}, {1, 1});
  ExpectRejected(item, kInvalid, "items[1].grad_output", "float64");
}

TEST_F(BadInputTest, GradOutputUnknownDTypeNumber) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  *item.mutable_grad_output() = F32({2}, {1, 1});
  item.mutable_grad_output()->set_dtype(static_cast<v1::DType>(42));
  ExpectRejected(item, kInvalid, "items[1].grad_output.dtype", "unknown dtype number 42");
}

TEST_F(BadInputTest, PreluWeightWrongSize) {
  v1::ComputeItem item;
  *item.mutable_input() = F32({2, 3}, {1, 2, 3, 4, 5, 6});  // 3 channels
  *item.mutable_activation()->mutable_prelu()->mutable_weight() = F32({2}, {0.1, 0.2});
  ExpectRejected(item, kInvalid, "items[1].activation.prelu.weight", "expected 1 or 3");
}

TEST_F(BadInputTest, PreluWeightWrongDType) {
  v1::ComputeItem item;
  *item.mutable_input() = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  *item.mutable_activation()->mutable_prelu()->mutable_weight() = F64({1}, {0.1});
  ExpectRejected(item, kInvalid, "items[1].activation.prelu.weight", "float64");
}

TEST_F(BadInputTest, SoftmaxDimOutOfRange) {
  v1::ComputeItem item = ReluItem({2, 2}, {1, 2, 3, 4});
  item.mutable_activation()->mutable_softmax()->set_dim(2);
  ExpectRejected(item, kInvalid, "items[1].activation: softmax", "dim 2");
}

TEST_F(BadInputTest, UnknownModeNumber) {
  v1::ComputeItem item = ReluItem({2}, {1, 2});
  item.set_mode(static_cast<v1::Mode>(7));
  ExpectRejected(item, kInvalid, "items[1].mode", "unknown mode number 7");
}

TEST_F(BadInputTest, ErrorInAStreamEndsItWithThatStatus) {
  grpc::ClientContext context;
  auto stream = server_.stub->ComputeStream(&context);
  ASSERT_TRUE(stream->Write(ValidRequest()));
  v1::ComputeResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_THAT(Values(response.results(0).output()), ElementsAre(0, 0, 0, 1, 2));

  v1::ComputeRequest bad;
  *bad.add_items() = ReluItem({2, 2}, {1, 2, 3});
  stream->Write(bad);  // may report false once the server has ended the stream
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), kInvalid);
  EXPECT_THAT(status.error_message(), StartsWith("items[0].input"));
  ExpectServerStillWorks();
}

// --- Limits: each on its own server with a small limit. ---

TEST(LimitsTest, OverMaxElementsIsResourceExhausted) {
  ServerOptions options;
  options.max_elements = 10;
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  v1::ComputeRequest request;
  *request.add_items() = ReluItem({6}, {1, 2, 3, 4, 5, 6});
  *request.add_items() = ReluItem({6}, {1, 2, 3, 4, 5, 6});  // 12 > 10, summed
  const grpc::Status status = CallCompute(server, request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("items[1]"));
  EXPECT_THAT(status.error_message(), HasSubstr("10"));
  request.mutable_items()->RemoveLast();
  EXPECT_TRUE(CallCompute(server, request).ok());
}

TEST(LimitsTest, RequestOverMaxMessageBytesIsRefusedByGrpc) {
  ServerOptions options;
  options.max_message_bytes = 64 << 10;  // 64 KiB
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  v1::ComputeRequest request;
  *request.add_items() = ReluItem({20000}, std::vector<double>(20000, 1.0));  // 80 KB
  const grpc::Status status = CallCompute(server, request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  EXPECT_TRUE(CallCompute(server, ValidRequest()).ok());
}

TEST(LimitsTest, ResponseOverMaxMessageBytesIsRefusedBeforeComputing) {
  ServerOptions options;
  options.max_message_bytes = 64 << 10;  // 64 KiB
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  // 40 KB in; output and gradient would be 80 KB out.
  v1::ComputeRequest request;
  *request.add_items() = ReluItem({10000}, std::vector<double>(10000, 1.0));
  const grpc::Status status = CallCompute(server, request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("--max_message_bytes"));
  // Asking for the output only fits.
  request.mutable_items(0)->set_mode(v1::MODE_FORWARD);
  v1::ComputeResponse response;
  EXPECT_TRUE(CallCompute(server, request, &response).ok());
  EXPECT_EQ(response.results(0).output().data().size(), 40000u);
}

TEST(LimitsTest, OverMaxInflightIsRefusedAtOnce) {
  // The first softmax call is held in the engine until the test lets it go, so that it
  // holds the only Compute slot for as long as the test needs.
  auto release = std::make_shared<absl::Notification>();
  auto entered = std::make_shared<absl::Notification>();
  ServerOptions options;
  options.max_inflight = 1;
  options.engine_before_item_for_testing = [release, entered](const ComputeItem& item,
                                                              const std::atomic<bool>*) {
    if (item.activation.kind != ActivationKind::kSoftmax) return;
    entered->Notify();
    release->WaitForNotification();
  };
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);

  v1::ComputeRequest held_request;
  *held_request.add_items() = ReluItem({2}, {-1, 1});
  held_request.mutable_items(0)->mutable_activation()->mutable_softmax();
  grpc::ClientContext held_context;
  v1::ComputeResponse held_response;
  absl::Notification held_done;
  grpc::Status held_status;
  server.stub->async()->Compute(&held_context, &held_request, &held_response,
                                [&](grpc::Status status) {
                                  held_status = std::move(status);
                                  held_done.Notify();
                                });
  entered->WaitForNotification();

  const grpc::Status refused = CallCompute(server, ValidRequest());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(),
              HasSubstr("too many calls in flight: 1 (limit --max_inflight)"));

  // ListActivations is not counted: discovery works under load.
  grpc::ClientContext list_context;
  v1::ListActivationsResponse list;
  EXPECT_TRUE(
      server.stub->ListActivations(&list_context, v1::ListActivationsRequest(), &list)
          .ok());

  // Nor are streams: they have their own limit.
  grpc::ClientContext stream_context;
  auto stream = server.stub->ComputeStream(&stream_context);
  ASSERT_TRUE(stream->Write(ValidRequest()));
  v1::ComputeResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_FALSE(stream->Read(&response));
  ASSERT_TRUE(stream->Finish().ok());

  // Finishing the held call frees the slot before its status reaches the client.
  release->Notify();
  held_done.WaitForNotification();
  ASSERT_TRUE(held_status.ok()) << held_status.error_message();
  EXPECT_TRUE(CallCompute(server, ValidRequest()).ok());
}

// Streams that send nothing hold only stream slots: unary calls go on being served, and
// the stream limit refuses one more stream with its own message.
TEST(LimitsTest, IdleStreamsDoNotLockUnaryCallsOut) {
  ServerOptions options;
  options.max_inflight = 2;
  options.max_streams = 2;
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);

  // Two idle streams, each admitted (a round trip proves it), then left open.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<v1::ComputeRequest, v1::ComputeResponse>>>
      streams;
  for (int i = 0; i < 2; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(server.stub->ComputeStream(contexts.back().get()));
    ASSERT_TRUE(streams.back()->Write(ValidRequest()));
    v1::ComputeResponse response;
    ASSERT_TRUE(streams.back()->Read(&response));
  }

  for (int i = 0; i < 3; ++i) {
    v1::ComputeResponse response;
    const grpc::Status status = CallCompute(server, ValidRequest(), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_THAT(Values(response.results(0).output()), ElementsAre(0, 0, 0, 1, 2));
  }

  grpc::ClientContext third_context;
  auto third = server.stub->ComputeStream(&third_context);
  v1::ComputeResponse response;
  EXPECT_FALSE(third->Read(&response));
  const grpc::Status third_status = third->Finish();
  EXPECT_EQ(third_status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(third_status.error_message(),
              HasSubstr("too many streams open: 2 (limit --max_streams)"));

  for (auto& stream : streams) {
    ASSERT_TRUE(stream->WritesDone());
    EXPECT_FALSE(stream->Read(&response));
    EXPECT_TRUE(stream->Finish().ok());
  }
}

}  // namespace
}  // namespace server
}  // namespace actserve
