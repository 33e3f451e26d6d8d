// The ActivationService's RPCs against a real server on a loopback port: values a reader
// can check by hand or against PyTorch, result presence per mode, every dtype, PReLU,
// softmax, streaming order, ListActivations and the valid edge cases.
#include "server/activation_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "src/catalogue.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::CallCompute;
using ::actserve::server::testing::F32;
using ::actserve::server::testing::F64;
using ::actserve::server::testing::MakeTensor;
using ::actserve::server::testing::ReluItem;
using ::actserve::server::testing::Shape;
using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TestServer;
using ::actserve::server::testing::Values;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

class ActivationServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartTestServer();
    ASSERT_NE(server_.server, nullptr);
  }

  // Computes a one-item request; fails the test unless the call succeeds.
  v1::ComputeResult ComputeOne(const v1::ComputeItem& item) {
    v1::ComputeRequest request;
    *request.add_items() = item;
    v1::ComputeResponse response;
    const grpc::Status status = CallCompute(server_, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
    EXPECT_EQ(response.results_size(), 1);
    return response.results_size() == 1 ? response.results(0) : v1::ComputeResult();
  }

  TestServer server_;
};

TEST_F(ActivationServiceTest, ReluForwardAndGradientByHand) {
  const v1::ComputeResult result = ComputeOne(ReluItem({5}, {-2, -1, 0, 1, 2}));
  EXPECT_THAT(Values(result.output()), ElementsAre(0, 0, 0, 1, 2));
  // ReLU'(0) = 0 (PyTorch's convention); dy defaults to 1, so this is f'(x) itself.
  EXPECT_THAT(Values(result.grad_input()), ElementsAre(0, 0, 0, 1, 1));
  EXPECT_EQ(result.output().dtype(), v1::DTYPE_FLOAT32);
  EXPECT_THAT(Shape(result.output()), ElementsAre(5));
  EXPECT_THAT(Shape(result.grad_input()), ElementsAre(5));
  EXPECT_FALSE(result.has_grad_weight());
}

// Expected values from PyTorch 1.13 in float64:
//   /usr/bin/python3 -c 'import torch
//   x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], dtype=torch.float64,
//                    requires_grad=True)
//   for a in ["none", "tanh"]:
//       y = torch.nn.functional.gelu(x, approximate=a)
//       (g,) = torch.autograd.grad(y.sum(), x)
//       print(a, ["%.17g" % v for v in y.tolist()], ["%.17g" % v for v in g.tolist()])'
constexpr double kGeluX[] = {-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0};
constexpr double kGeluExact[] = {
    -0.0040496940948903104, -0.15865525393145702, -0.15426876936299344, 0,
    0.34573123063700656,    0.84134474606854304,  2.9959503059051098};
constexpr double kGeluExactGrad[] = {
    -0.01194564720418392, -0.083315470587686347, 0.13250487534383712, 0.5,
    0.86749512465616285,  1.0833154705876864,    1.0119456472041839};
constexpr double kGeluTanh[] = {
    -0.0036373920817729943, -0.15880800939172324, -0.15428599017485606, 0,
    0.34571400982514394,    0.84119199060827676,  2.9963626079182268};
constexpr double kGeluTanhGrad[] = {
    -0.011584166630969648, -0.082964083845782521, 0.13263009646535764, 0.5,
    0.86736990353464238,   1.0829640838457826,    1.0115841666309695};

void ExpectNearAll(const std::vector<double>& actual, const double* expected, size_t n,
                   double tolerance) {
  ASSERT_EQ(actual.size(), n);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(actual[i], expected[i], tolerance * std::max(1.0, std::fabs(expected[i])))
        << "at index " << i;
  }
}

TEST_F(ActivationServiceTest, GeluMatchesPyTorch) {
  const std::vector<double> x(std::begin(kGeluX), std::end(kGeluX));
  v1::ComputeItem item;
  *item.mutable_input() = F64({7}, x);
  item.mutable_activation()->mutable_gelu();
  v1::ComputeResult exact = ComputeOne(item);
  ExpectNearAll(Values(exact.output()), kGeluExact, 7, 1e-14);
  ExpectNearAll(Values(exact.grad_input()), kGeluExactGrad, 7, 1e-14);

  item.mutable_activation()->mutable_gelu()->set_approximate(v1::GELU_APPROXIMATE_TANH);
  v1::ComputeResult tanh = ComputeOne(item);
  ExpectNearAll(Values(tanh.output()), kGeluTanh, 7, 1e-14);
  ExpectNearAll(Values(tanh.grad_input()), kGeluTanhGrad, 7, 1e-14);

  // float32 carries the same values to float32 precision.
  *item.mutable_input() = F32({7}, x);
  item.mutable_activation()->mutable_gelu()->set_approximate(v1::GELU_APPROXIMATE_NONE);
  v1::ComputeResult single = ComputeOne(item);
  EXPECT_EQ(single.output().dtype(), v1::DTYPE_FLOAT32);
  ExpectNearAll(Values(single.output()), kGeluExact, 7, 1e-6);
}

TEST_F(ActivationServiceTest, EveryDTypeRoundTrips) {
  // Values exact in every dtype, so relu's results are exact too.
  const std::vector<double> x = {-2, -0.5, 0, 0.25, 3, 1.5};
  const struct {
    v1::DType dtype;
    size_t element_bytes;
  } kCases[] = {{v1::DTYPE_FLOAT32, 4},
                {v1::DTYPE_FLOAT64, 8},
                {v1::DTYPE_FLOAT16, 2},
                {v1::DTYPE_BFLOAT16, 2}};
  for (const auto& c : kCases) {
    SCOPED_TRACE(v1::DType_Name(c.dtype));
    v1::ComputeItem item;
    *item.mutable_input() = MakeTensor(c.dtype, {2, 3}, x);
    item.mutable_activation()->mutable_relu();
    const v1::ComputeResult result = ComputeOne(item);
    for (const v1::Tensor* tensor : {&result.output(), &result.grad_input()}) {
      EXPECT_EQ(tensor->dtype(), c.dtype);
      EXPECT_THAT(Shape(*tensor), ElementsAre(2, 3));
      EXPECT_EQ(tensor->data().size(), 6 * c.element_bytes);
    }
    EXPECT_THAT(Values(result.output()), ElementsAre(0, 0, 0, 0.25, 3, 1.5));
    EXPECT_THAT(Values(result.grad_input()), ElementsAre(0, 0, 0, 1, 1, 1));
  }
}

TEST_F(ActivationServiceTest, ModesLeaveUnaskedResultsUnset) {
  v1::ComputeItem item = ReluItem({3}, {-1, 0, 2});

  item.set_mode(v1::MODE_FORWARD);
  v1::ComputeResult forward = ComputeOne(item);
  EXPECT_TRUE(forward.has_output());
  EXPECT_FALSE(forward.has_grad_input());
  EXPECT_THAT(Values(forward.output()), ElementsAre(0, 0, 2));

  item.set_mode(v1::MODE_BACKWARD);
  v1::ComputeResult backward = ComputeOne(item);
  EXPECT_FALSE(backward.has_output());
  EXPECT_TRUE(backward.has_grad_input());
  EXPECT_THAT(Values(backward.grad_input()), ElementsAre(0, 0, 1));

  for (v1::Mode both : {v1::MODE_FORWARD_BACKWARD, v1::MODE_UNSPECIFIED}) {
    item.set_mode(both);
    v1::ComputeResult result = ComputeOne(item);
    EXPECT_THAT(Values(result.output()), ElementsAre(0, 0, 2));
    EXPECT_THAT(Values(result.grad_input()), ElementsAre(0, 0, 1));
  }
}

TEST_F(ActivationServiceTest, GradOutputIsHonoured) {
  v1::ComputeItem item = ReluItem({5}, {-2, -1, 0, 1, 2});
  *item.mutable_grad_output() = F32({5}, {10, 20, 30, 40, 50});
  const v1::ComputeResult result = ComputeOne(item);
  EXPECT_THAT(Values(result.grad_input()), ElementsAre(0, 0, 0, 40, 50));

  // leaky_relu: dx = x > 0 ? dy : slope * dy.
  v1::ComputeItem leaky;
  *leaky.mutable_input() = F64({3}, {-4, 0, 4});
  *leaky.mutable_grad_output() = F64({3}, {2, 3, 5});
  leaky.mutable_activation()->mutable_leaky_relu()->set_negative_slope(0.5);
  const v1::ComputeResult leaky_result = ComputeOne(leaky);
  EXPECT_THAT(Values(leaky_result.output()), ElementsAre(-2, 0, 4));
  EXPECT_THAT(Values(leaky_result.grad_input()), ElementsAre(1, 1.5, 5));
}

TEST_F(ActivationServiceTest, GradOutputIsIgnoredInForwardMode) {
  v1::ComputeItem item = ReluItem({2}, {-1, 1});
  item.set_mode(v1::MODE_FORWARD);
  *item.mutable_grad_output() = F32({7}, {1, 2, 3, 4, 5, 6, 7});  // wrong shape: unused
  const v1::ComputeResult result = ComputeOne(item);
  EXPECT_THAT(Values(result.output()), ElementsAre(0, 1));
  EXPECT_FALSE(result.has_grad_input());
}

TEST_F(ActivationServiceTest, PreluPerChannelWithWeightGradientByHand) {
  // Input [N=1, C=2, L=2]: channel 0 is {-1, 2}, channel 1 is {-3, 4}.
  v1::ComputeItem item;
  *item.mutable_input() = F64({1, 2, 2}, {-1, 2, -3, 4});
  *item.mutable_activation()->mutable_prelu()->mutable_weight() = F64({2}, {0.25, 0.5});
  *item.mutable_grad_output() = F64({1, 2, 2}, {2, 3, 4, 5});
  const v1::ComputeResult result = ComputeOne(item);
  // y = x > 0 ? x : w_c * x
  EXPECT_THAT(Values(result.output()), ElementsAre(-0.25, 2, -1.5, 4));
  // dx = x > 0 ? g : w_c * g
  EXPECT_THAT(Values(result.grad_input()), ElementsAre(0.5, 3, 2, 5));
  // dw_c = sum over x <= 0 of x * g: channel 0: -1 * 2; channel 1: -3 * 4.
  EXPECT_THAT(Values(result.grad_weight()), ElementsAre(-2, -12));
  EXPECT_THAT(Shape(result.grad_weight()), ElementsAre(2));
  EXPECT_EQ(result.grad_weight().dtype(), v1::DTYPE_FLOAT64);
}

TEST_F(ActivationServiceTest, PreluDefaultWeightGivesOneWeightGradient) {
  // No weight: one weight of 0.25 (torch.nn.PReLU's initial value).
  v1::ComputeItem item;
  *item.mutable_input() = F32({2, 2}, {-4, 1, -2, 3});
  item.mutable_activation()->mutable_prelu();
  item.set_mode(v1::MODE_BACKWARD);
  const v1::ComputeResult result = ComputeOne(item);
  EXPECT_FALSE(result.has_output());
  EXPECT_THAT(Values(result.grad_input()), ElementsAre(0.25, 1, 0.25, 1));
  // dy = 1: dw = -4 + -2.
  EXPECT_THAT(Values(result.grad_weight()), ElementsAre(-6));
  EXPECT_THAT(Shape(result.grad_weight()), ElementsAre(1));
  EXPECT_EQ(result.grad_weight().dtype(), v1::DTYPE_FLOAT32);

  item.set_mode(v1::MODE_FORWARD);
  EXPECT_FALSE(ComputeOne(item).has_grad_weight());
}

TEST_F(ActivationServiceTest, SoftmaxAlongTheRequestedDim) {
  // [[0, 0], [ln 3, 0]]: along dim 0 the first column is softmax(0, ln 3) = (1/4, 3/4);
  // along dim 1 the second row is softmax(ln 3, 0) = (3/4, 1/4).
  const double ln3 = std::log(3.0);
  v1::ComputeItem item;
  *item.mutable_input() = F64({2, 2}, {0, 0, ln3, 0});
  item.set_mode(v1::MODE_FORWARD);

  item.mutable_activation()->mutable_softmax()->set_dim(0);
  std::vector<double> dim0 = Values(ComputeOne(item).output());
  ASSERT_EQ(dim0.size(), 4u);
  EXPECT_NEAR(dim0[0], 0.25, 1e-15);
  EXPECT_NEAR(dim0[1], 0.5, 1e-15);
  EXPECT_NEAR(dim0[2], 0.75, 1e-15);
  EXPECT_NEAR(dim0[3], 0.5, 1e-15);

  item.mutable_activation()->mutable_softmax()->clear_dim();  // default -1, i.e. 1
  std::vector<double> last = Values(ComputeOne(item).output());
  ASSERT_EQ(last.size(), 4u);
  EXPECT_NEAR(last[0], 0.5, 1e-15);
  EXPECT_NEAR(last[1], 0.5, 1e-15);
  EXPECT_NEAR(last[2], 0.75, 1e-15);
  EXPECT_NEAR(last[3], 0.25, 1e-15);

  // log_softmax along dim 0 of the first column: log(1/4), log(3/4).
  item.mutable_activation()->mutable_log_softmax()->set_dim(-2);
  std::vector<double> log_dim0 = Values(ComputeOne(item).output());
  ASSERT_EQ(log_dim0.size(), 4u);
  EXPECT_NEAR(log_dim0[0], std::log(0.25), 1e-15);
  EXPECT_NEAR(log_dim0[2], std::log(0.75), 1e-15);
}

TEST_F(ActivationServiceTest, ParametersReachTheEngine) {
  v1::ComputeItem item;
  *item.mutable_input() = F64({4}, {-3, -0.25, 0.25, 3});
  item.set_mode(v1::MODE_FORWARD);
  v1::Hardtanh* hardtanh = item.mutable_activation()->mutable_hardtanh();
  hardtanh->set_min_val(-2);
  hardtanh->set_max_val(0.5);
  EXPECT_THAT(Values(ComputeOne(item).output()), ElementsAre(-2, -0.25, 0.25, 0.5));

  v1::Threshold* threshold = item.mutable_activation()->mutable_threshold();
  threshold->set_threshold(0);
  threshold->set_value(-7);
  EXPECT_THAT(Values(ComputeOne(item).output()), ElementsAre(-7, -7, 0.25, 3));
}

TEST_F(ActivationServiceTest, BatchResultsKeepItemOrder) {
  v1::ComputeRequest request;
  for (int i = 0; i < 5; ++i) *request.add_items() = ReluItem({2}, {-1.0 * i, 1.0 * i});
  v1::ComputeResponse response;
  ASSERT_TRUE(CallCompute(server_, request, &response).ok());
  ASSERT_EQ(response.results_size(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(Values(response.results(i).output()), ElementsAre(0, i));
  }
}

TEST_F(ActivationServiceTest, LargeBatchIsComputedOnTheWorkerPool) {
  // 1 MiB of float32, well above the 64 KiB inline threshold.
  constexpr int kElements = 1 << 18;
  std::vector<double> x(kElements);
  for (int i = 0; i < kElements; ++i) x[i] = (i % 7) - 3.0;
  const v1::ComputeResult result = ComputeOne(ReluItem({kElements}, x));
  const std::vector<double> y = Values(result.output());
  const std::vector<double> dx = Values(result.grad_input());
  ASSERT_EQ(y.size(), static_cast<size_t>(kElements));
  ASSERT_EQ(dx.size(), static_cast<size_t>(kElements));
  for (int i = 0; i < kElements; ++i) {
    ASSERT_EQ(y[i], std::max(0.0, x[i])) << i;
    ASSERT_EQ(dx[i], x[i] > 0 ? 1.0 : 0.0) << i;
  }
}

TEST_F(ActivationServiceTest, EmptyBatchSucceedsWithNoResults) {
  v1::ComputeResponse response;
  EXPECT_TRUE(CallCompute(server_, v1::ComputeRequest(), &response).ok());
  EXPECT_EQ(response.results_size(), 0);
}

TEST_F(ActivationServiceTest, ZeroElementTensorGivesEmptyResultOfTheSameShape) {
  const v1::ComputeResult result = ComputeOne(ReluItem({0, 3}, {}));
  ASSERT_TRUE(result.has_output());
  ASSERT_TRUE(result.has_grad_input());
  EXPECT_THAT(Shape(result.output()), ElementsAre(0, 3));
  EXPECT_THAT(Shape(result.grad_input()), ElementsAre(0, 3));
  EXPECT_THAT(result.output().data(), IsEmpty());
  EXPECT_THAT(result.grad_input().data(), IsEmpty());
  EXPECT_EQ(result.output().dtype(), v1::DTYPE_FLOAT32);
}

TEST_F(ActivationServiceTest, ScalarInput) {
  const v1::ComputeResult result = ComputeOne(ReluItem({}, {3}));
  EXPECT_THAT(Shape(result.output()), IsEmpty());
  EXPECT_THAT(Values(result.output()), ElementsAre(3));
}

TEST_F(ActivationServiceTest, StreamAnswersPipelinedRequestsInOrder) {
  constexpr int kRequests = 20;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ComputeRequest, v1::ComputeResponse>>
      stream = server_.stub->ComputeStream(&context);
  // All requests go out before any response is read: the server must queue nothing
  // out of order.
  for (int k = 0; k < kRequests; ++k) {
    v1::ComputeRequest request;
    *request.add_items() = ReluItem({3}, {-1.0 * k, 0.5 * k, 2.0 * k});
    ASSERT_TRUE(stream->Write(request)) << k;
  }
  ASSERT_TRUE(stream->WritesDone());
  for (int k = 0; k < kRequests; ++k) {
    v1::ComputeResponse response;
    ASSERT_TRUE(stream->Read(&response)) << k;
    ASSERT_EQ(response.results_size(), 1);
    EXPECT_THAT(Values(response.results(0).output()), ElementsAre(0, 0.5 * k, 2.0 * k))
        << "response " << k;
    const double positive = k > 0 ? 1 : 0;
    EXPECT_THAT(Values(response.results(0).grad_input()),
                ElementsAre(0, positive, positive));
  }
  v1::ComputeResponse extra;
  EXPECT_FALSE(stream->Read(&extra));
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(ActivationServiceTest, StreamCarriesLargeChunksThroughThePool) {
  constexpr int kElements = 1 << 16;  // 256 KiB of float32 per request
  grpc::ClientContext context;
  auto stream = server_.stub->ComputeStream(&context);
  for (int k = 0; k < 3; ++k) {
    std::vector<double> x(kElements, k - 1.0);
    v1::ComputeRequest request;
    *request.add_items() = ReluItem({kElements}, x);
    request.mutable_items(0)->set_mode(v1::MODE_FORWARD);
    ASSERT_TRUE(stream->Write(request));
    v1::ComputeResponse response;
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_EQ(response.results_size(), 1);
    const std::vector<double> y = Values(response.results(0).output());
    ASSERT_EQ(y.size(), static_cast<size_t>(kElements));
    EXPECT_EQ(y.front(), std::max(0.0, k - 1.0));
    EXPECT_EQ(y.back(), std::max(0.0, k - 1.0));
  }
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ActivationServiceTest, EmptyStreamFinishesOk) {
  grpc::ClientContext context;
  auto stream = server_.stub->ComputeStream(&context);
  ASSERT_TRUE(stream->WritesDone());
  v1::ComputeResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ActivationServiceTest, ListActivationsDescribesTheCatalogueAndTheServer) {
  grpc::ClientContext context;
  v1::ListActivationsResponse response;
  ASSERT_TRUE(
      server_.stub->ListActivations(&context, v1::ListActivationsRequest(), &response)
          .ok());

  ASSERT_EQ(response.activations_size(), 24);
  ASSERT_EQ(Catalogue().size(), 24u);
  for (int i = 0; i < response.activations_size(); ++i) {
    const v1::ActivationInfo& info = response.activations(i);
    EXPECT_EQ(info.name(), std::string(Catalogue()[i].name));
    EXPECT_FALSE(info.description().empty()) << info.name();
    EXPECT_FALSE(info.formula().empty()) << info.name();
    EXPECT_FALSE(info.gradient().empty()) << info.name();
    EXPECT_EQ(info.elementwise(),
              info.name() != "softmax" && info.name() != "log_softmax");
  }
  // Wire order: the oneof's field numbers minus one.
  EXPECT_EQ(response.activations(0).name(), "relu");
  EXPECT_EQ(response.activations(23).name(), "log_softmax");

  const v1::ActivationInfo& leaky = response.activations(2);
  ASSERT_EQ(leaky.name(), "leaky_relu");
  ASSERT_EQ(leaky.parameters_size(), 1);
  EXPECT_EQ(leaky.parameters(0).name(), "negative_slope");
  EXPECT_EQ(leaky.parameters(0).default_value(), 0.01);
  EXPECT_EQ(leaky.parameters(0).default_text(), "0.01");
  EXPECT_FALSE(leaky.parameters(0).required());
  EXPECT_EQ(leaky.parameters(0).type(), v1::ParameterInfo::TYPE_REAL);

  const v1::ActivationInfo& threshold = response.activations(21);
  ASSERT_EQ(threshold.name(), "threshold");
  ASSERT_EQ(threshold.parameters_size(), 2);
  EXPECT_EQ(threshold.parameters(0).name(), "threshold");
  EXPECT_EQ(threshold.parameters(1).name(), "value");
  EXPECT_TRUE(threshold.parameters(0).required());
  EXPECT_TRUE(threshold.parameters(1).required());
  EXPECT_EQ(threshold.parameters(0).default_text(), "");

  const v1::ActivationInfo& gelu = response.activations(7);
  ASSERT_EQ(gelu.name(), "gelu");
  ASSERT_EQ(gelu.parameters_size(), 1);
  EXPECT_EQ(gelu.parameters(0).type(), v1::ParameterInfo::TYPE_CHOICE);
  EXPECT_THAT(gelu.parameters(0).choices(), ElementsAre("none", "tanh"));
  EXPECT_EQ(gelu.parameters(0).default_text(), "none");

  const v1::ServerInfo& info = response.server();
  EXPECT_THAT(info.version(), ::testing::MatchesRegex("[0-9]+\\.[0-9]+\\.[0-9]+"));
  EXPECT_THAT(info.dtypes(), ElementsAre(v1::DTYPE_FLOAT32, v1::DTYPE_FLOAT64,
                                         v1::DTYPE_FLOAT16, v1::DTYPE_BFLOAT16));
  // The Highway target the kernels dispatched to on this CPU.
  EXPECT_THAT(info.simd_target(), ::testing::AnyOf("SCALAR", "EMU128", "SSSE3", "SSE4", "AVX2",
                                                 "AVX3", "AVX3_DL", "AVX3_ZEN4"));
  EXPECT_EQ(info.threads(), 2);  // StartTestServer's thread count
  const ServerOptions defaults;
  EXPECT_EQ(info.limits().max_message_bytes(), defaults.max_message_bytes);
  EXPECT_EQ(info.limits().max_elements(), defaults.max_elements);
  EXPECT_EQ(info.limits().max_inflight(), defaults.max_inflight);
}

TEST(ActivationServiceLimitsTest, ListActivationsReportsConfiguredLimits) {
  ServerOptions options;
  options.threads = 1;
  options.max_message_bytes = 12345;
  options.max_elements = 678;
  options.max_inflight = 9;
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  grpc::ClientContext context;
  v1::ListActivationsResponse response;
  ASSERT_TRUE(
      server.stub->ListActivations(&context, v1::ListActivationsRequest(), &response)
          .ok());
  EXPECT_EQ(response.server().threads(), 1);
  EXPECT_EQ(response.server().limits().max_message_bytes(), 12345);
  EXPECT_EQ(response.server().limits().max_elements(), 678);
  EXPECT_EQ(response.server().limits().max_inflight(), 9);
}

}  // namespace
}  // namespace server
}  // namespace actserve
