// The Open Inference Protocol's models (server/inference/model.h) and its gRPC door
// (grpc_service.h): the plan of each request against the contract, the wire scan against
// protobuf's own encoding, and ModelInfer over a real loopback connection against the
// long-double oracle, with the limits, deadlines, tokens and drain every door shares.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "inference/open_inference_grpc.grpc.pb.h"
#include "server/inference/grpc_service.h"
#include "server/inference/model.h"
#include "tests/oracle/reference.h"
#include "tests/server/grpc_test_util.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace inference {
namespace {

namespace pb = ::inference;
using ::testing::HasSubstr;
using testing::EncodeValues;
using testing::StartTestServer;
using testing::TestServer;

// --- The plan (no network). ---

struct Tensor {
  std::string name;
  std::string datatype = "FP32";
  std::vector<int64_t> shape;
  std::string bytes;
};

// An InferRequest over `tensors`, which must outlive it.
InferRequest MakeRequest(absl::string_view model, const std::vector<Tensor>& tensors,
                         std::vector<std::string> outputs = {}) {
  InferRequest request;
  request.model_name = std::string(model);
  for (const Tensor& tensor : tensors) {
    request.inputs.push_back({tensor.name, tensor.datatype, tensor.shape, tensor.bytes});
  }
  request.outputs = std::move(outputs);
  return request;
}

Tensor F32(absl::string_view name, std::vector<int64_t> shape, std::vector<double> values) {
  return {std::string(name), "FP32", std::move(shape), EncodeValues(DType::kFloat32, values)};
}

class PlanTest : public ::testing::Test {
 protected:
  Engine engine_{EngineOptions{}};
};

TEST_F(PlanTest, RequestedOutputsChooseThePass) {
  const std::vector<Tensor> x = {F32("x", {2, 3}, {1, -2, 3, -4, 5, -6})};
  absl::StatusOr<InferencePlan> forward = PlanInference(MakeRequest("relu", x, {"y"}), engine_);
  ASSERT_TRUE(forward.ok()) << forward.status();
  EXPECT_EQ(forward->item.mode, Mode::kForward);
  ASSERT_EQ(forward->outputs.size(), 1u);
  EXPECT_EQ(forward->outputs[0].name, "y");
  EXPECT_EQ(forward->outputs[0].bytes, 24u);
  EXPECT_EQ(forward->outputs[0].shape, (std::vector<int64_t>{2, 3}));

  absl::StatusOr<InferencePlan> backward = PlanInference(MakeRequest("relu", x, {"dx"}), engine_);
  ASSERT_TRUE(backward.ok()) << backward.status();
  EXPECT_EQ(backward->item.mode, Mode::kBackward);

  // None requested: every output of the model, in metadata order, one fused pass.
  absl::StatusOr<InferencePlan> all = PlanInference(MakeRequest("prelu", x), engine_);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->item.mode, Mode::kForwardBackward);
  ASSERT_EQ(all->outputs.size(), 3u);
  EXPECT_EQ(all->outputs[0].name, "y");
  EXPECT_EQ(all->outputs[1].name, "dx");
  EXPECT_EQ(all->outputs[2].name, "dweight");
  EXPECT_EQ(all->outputs[2].shape, (std::vector<int64_t>{1}));  // the one default weight

  // Request order is kept; dx is computed (not sent) when only dweight is asked for.
  absl::StatusOr<InferencePlan> dweight =
      PlanInference(MakeRequest("prelu", x, {"dweight"}), engine_);
  ASSERT_TRUE(dweight.ok()) << dweight.status();
  EXPECT_EQ(dweight->item.mode, Mode::kBackward);
  ASSERT_EQ(dweight->outputs.size(), 2u);
  EXPECT_EQ(dweight->outputs[0].name, "dweight");
  EXPECT_TRUE(dweight->outputs[0].requested);
  EXPECT_EQ(dweight->outputs[1].name, "dx");
  EXPECT_FALSE(dweight->outputs[1].requested);
}

TEST_F(PlanTest, ParametersTakeTheCataloguesNamesAndTypes) {
  const std::vector<Tensor> x = {F32("x", {4}, {1, 2, 3, 4})};
  InferRequest request = MakeRequest("leaky_relu", x);
  request.parameters = {{"negative_slope", int64_t{3}}};
  absl::StatusOr<InferencePlan> plan = PlanInference(request, engine_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->item.activation, *ParseActivationSpec("leaky_relu(negative_slope=3)"));

  request.parameters = {{"negative_slope", 0.25}};
  plan = PlanInference(request, engine_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->item.activation, *ParseActivationSpec("leaky_relu(negative_slope=0.25)"));

  request = MakeRequest("gelu", x);
  request.parameters = {{"approximate", std::string("tanh")}};
  plan = PlanInference(request, engine_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->item.activation, *ParseActivationSpec("gelu(approximate=tanh)"));

  request = MakeRequest("softmax", x);
  request.parameters = {{"dim", int64_t{-1}}, {"priority", int64_t{5}},
                        {"timeout", int64_t{2500}}};
  plan = PlanInference(request, engine_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->item.activation, *ParseActivationSpec("softmax(dim=-1)"));
  EXPECT_EQ(plan->timeout, absl::Microseconds(2500));

  // As Triton's: a timeout of 0 means none.
  request.parameters = {{"timeout", int64_t{0}}};
  plan = PlanInference(request, engine_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->timeout.has_value());
}

// Out-of-range values fail with exactly the text form's message: the text form is the
// oracle.
TEST_F(PlanTest, ParameterValuesAreValidatedAsTheTextForm) {
  const std::vector<Tensor> x = {F32("x", {4}, {1, 2, 3, 4})};
  struct Case {
    std::string model;
    std::vector<Parameter> parameters;
    std::string text;
  };
  const std::vector<Case> cases = {
      {"softplus", {{"beta", 0.0}}, "softplus(beta=0)"},
      {"gelu", {{"approximate", std::string("fast")}}, "gelu(approximate=fast)"},
      {"hardtanh", {{"min_val", 2.0}, {"max_val", 1.0}}, "hardtanh(min_val=2, max_val=1)"},
      {"softmax", {{"dim", 0.5}}, "softmax(dim=0.5)"},
      {"threshold", {{"threshold", 1.0}}, "threshold(threshold=1)"},
      {"softshrink", {{"lambd", -1.0}}, "softshrink(lambd=-1)"},
  };
  for (const Case& c : cases) {
    InferRequest request = MakeRequest(c.model, x);
    request.parameters = c.parameters;
    absl::StatusOr<InferencePlan> plan = PlanInference(request, engine_);
    const absl::Status text_form = ParseActivationSpec(c.text).status();
    ASSERT_FALSE(text_form.ok()) << c.text;
    EXPECT_EQ(plan.status(), text_form) << c.text;
  }
}

TEST_F(PlanTest, EveryBadRequestNamesItsField) {
  struct Case {
    std::string what;
    InferRequest request;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Tensor> x = {F32("x", {2}, {1, 2})};
  const std::vector<Tensor> x_dy64 = {F32("x", {2}, {1, 2}),
                                      {"dy", "FP64", {2}, EncodeValues(DType::kFloat64, {1, 1})}};
  const std::vector<Tensor> int32 = {{"x", "INT32", {2}, std::string(8, '\0')}};
  const std::vector<Tensor> short_x = {{"x", "FP32", {2, 2}, std::string(12, '\0')}};
  const std::vector<Tensor> stranger = {F32("x", {2}, {1, 2}), F32("z", {2}, {1, 2})};
  const std::vector<Tensor> twice = {F32("x", {2}, {1, 2}), F32("x", {2}, {1, 2})};
  const std::vector<Tensor> no_x = {F32("dy", {2}, {1, 2})};
  const std::vector<Tensor> weight = {F32("x", {2}, {1, 2}), F32("weight", {1}, {0.5})};
  const std::vector<Tensor> bad_dy = {F32("x", {2}, {1, 2}), F32("dy", {3}, {1, 2, 3})};
  const std::vector<Tensor> bad_weight = {F32("x", {2, 3}, {1, 2, 3, 4, 5, 6}),
                                          F32("weight", {2}, {0.5, 0.5})};
  InferRequest versioned = MakeRequest("relu", x);
  versioned.model_version = "2";
  InferRequest unknown_param = MakeRequest("relu", x);
  unknown_param.parameters = {{"alpha", 1.0}};
  InferRequest wrong_type = MakeRequest("leaky_relu", x);
  wrong_type.parameters = {{"negative_slope", std::string("0.1")}};
  InferRequest choice_number = MakeRequest("gelu", x);
  choice_number.parameters = {{"approximate", int64_t{1}}};
  InferRequest both_weights = MakeRequest("prelu", weight);
  both_weights.parameters = {{"weight", 0.1}};
  InferRequest bad_timeout = MakeRequest("relu", x);
  bad_timeout.parameters = {{"timeout", std::string("soon")}};
  const std::vector<Case> cases = {
      {"unknown model", MakeRequest("relux", x), absl::StatusCode::kNotFound,
       "model 'relux' is not served here; the models are the activations: relu, relu6"},
      {"version", versioned, absl::StatusCode::kNotFound,
       "model 'relu' has no version '2'; its only version is '1'"},
      {"unknown input", MakeRequest("relu", stranger), absl::StatusCode::kInvalidArgument,
       "inputs[1].name: 'z' is not an input of model 'relu' (inputs: x, dy)"},
      {"weight on relu", MakeRequest("relu", weight), absl::StatusCode::kInvalidArgument,
       "inputs[1].name: 'weight' is not an input of model 'relu'"},
      {"input twice", MakeRequest("relu", twice), absl::StatusCode::kInvalidArgument,
       "inputs[1].name: 'x' is given twice (also inputs[0])"},
      {"no x", MakeRequest("relu", no_x), absl::StatusCode::kInvalidArgument,
       "inputs: model 'relu' needs the input 'x'"},
      {"datatype", MakeRequest("relu", int32), absl::StatusCode::kInvalidArgument,
       "inputs[0].datatype: 'INT32' is not supported"},
      {"datatype mismatch", MakeRequest("relu", x_dy64), absl::StatusCode::kInvalidArgument,
       "inputs[1].datatype: 'dy' is FP64 but 'x' is FP32"},
      {"byte count", MakeRequest("relu", short_x), absl::StatusCode::kInvalidArgument,
       "inputs[0] (x): 12 bytes of contents, but shape [2,2] FP32 needs 16"},
      {"dy shape", MakeRequest("relu", bad_dy), absl::StatusCode::kInvalidArgument,
       "inputs[1] (dy): shape [3] does not match the input's [2]"},
      {"dy shape, forward only", MakeRequest("relu", bad_dy, {"y"}),
       absl::StatusCode::kInvalidArgument,
       "inputs[1] (dy): shape [3] does not match the input's [2]"},
      {"weight channels", MakeRequest("prelu", bad_weight), absl::StatusCode::kInvalidArgument,
       "inputs[1] (weight): 2 values, but the input [2,3] has 3 channels"},
      {"unknown output", MakeRequest("relu", x, {"y", "z"}), absl::StatusCode::kInvalidArgument,
       "outputs[1].name: 'z' is not an output of model 'relu' (outputs: y, dx)"},
      {"output twice", MakeRequest("relu", x, {"dx", "dx"}), absl::StatusCode::kInvalidArgument,
       "outputs[1].name: 'dx' is requested twice"},
      {"unknown parameter", unknown_param, absl::StatusCode::kInvalidArgument,
       "parameters.alpha: not a parameter of model 'relu' (it has none)"},
      {"parameter type", wrong_type, absl::StatusCode::kInvalidArgument,
       "parameters.negative_slope: leaky_relu's negative_slope is a number, got a string"},
      {"choice as number", choice_number, absl::StatusCode::kInvalidArgument,
       "parameters.approximate: gelu's approximate is a string (none or tanh), got an int64"},
      {"weight twice", both_weights, absl::StatusCode::kInvalidArgument,
       "parameters.weight: given together with inputs[1] (weight)"},
      {"timeout type", bad_timeout, absl::StatusCode::kInvalidArgument,
       "parameters.timeout: expected a number of microseconds, got a string"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<InferencePlan> plan = PlanInference(c.request, engine_);
    EXPECT_EQ(plan.status().code(), c.code) << c.what << ": " << plan.status();
    EXPECT_THAT(std::string(plan.status().message()), HasSubstr(c.message)) << c.what;
  }
}

TEST_F(PlanTest, MetadataListsTheModelsTensors) {
  absl::StatusOr<ModelMetadata> prelu = GetModelMetadata("prelu", "");
  ASSERT_TRUE(prelu.ok()) << prelu.status();
  EXPECT_EQ(prelu->versions, std::vector<std::string>{"1"});
  EXPECT_EQ(prelu->platform, "actserve");
  ASSERT_EQ(prelu->inputs.size(), 3u);
  EXPECT_EQ(prelu->inputs[2].name, "weight");
  EXPECT_EQ(prelu->inputs[2].shape, std::vector<int64_t>{-1});
  ASSERT_EQ(prelu->outputs.size(), 3u);
  EXPECT_EQ(prelu->outputs[2].name, "dweight");
  absl::StatusOr<ModelMetadata> gelu = GetModelMetadata("gelu", "1");
  ASSERT_TRUE(gelu.ok()) << gelu.status();
  EXPECT_EQ(gelu->inputs.size(), 2u);
  EXPECT_EQ(gelu->outputs.size(), 2u);
  EXPECT_EQ(GetModelMetadata("gelu", "0").status().code(), absl::StatusCode::kNotFound);
  // Every activation of the catalogue is a model.
  for (const ActivationInfo& info : Catalogue()) {
    EXPECT_TRUE(GetModelMetadata(info.name, "").ok()) << info.name;
  }
}

// --- The wire scan, against protobuf's encoding. ---

absl::Status Scan(const pb::ModelInferRequest& request, int max_rank = 32) {
  return ScanModelInferRequest(testing::ToByteBuffer(request.SerializeAsString()), max_rank);
}

pb::ModelInferRequest ValidRequest() {
  pb::ModelInferRequest request;
  request.set_model_name("prelu");
  request.set_id("r1");
  (*request.mutable_parameters())["weight"].set_double_param(0.5);
  for (const char* name : {"x", "dy", "weight"}) {
    pb::ModelInferRequest::InferInputTensor* input = request.add_inputs();
    input->set_name(name);
    input->set_datatype("FP32");
    input->add_shape(2);
    (*input->mutable_parameters())["note"].set_string_param("n");
    request.add_raw_input_contents(std::string(8, '\1'));
  }
  request.add_outputs()->set_name("y");
  return request;
}

TEST(ScanTest, AcceptsWhatItShouldAndCountsWhatProtobufWouldAllocate) {
  EXPECT_TRUE(Scan(ValidRequest()).ok());
  EXPECT_TRUE(Scan(pb::ModelInferRequest()).ok());

  pb::ModelInferRequest four_inputs = ValidRequest();
  four_inputs.add_inputs();  // even empty: each costs protobuf an object
  EXPECT_EQ(Scan(four_inputs).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(Scan(four_inputs).message()), HasSubstr("more than 3 inputs"));

  pb::ModelInferRequest four_outputs = ValidRequest();
  for (int i = 0; i < 3; ++i) four_outputs.add_outputs();
  EXPECT_THAT(std::string(Scan(four_outputs).message()), HasSubstr("more than 3 outputs"));

  pb::ModelInferRequest four_raw = ValidRequest();
  four_raw.add_raw_input_contents();
  EXPECT_THAT(std::string(Scan(four_raw).message()),
              HasSubstr("more than 3 raw_input_contents entries"));

  pb::ModelInferRequest parameters = ValidRequest();
  for (int i = 0; i < kMaxInferParameters; ++i) {
    (*parameters.mutable_parameters())[absl::StrCat("p", i)].set_bool_param(true);
  }
  EXPECT_EQ(Scan(parameters).message(), "parameters: more than 16 parameters");

  // Dimensions: packed (protobuf's proto3 default) and unpacked, at and over the limit.
  pb::ModelInferRequest rank = ValidRequest();
  rank.mutable_inputs(1)->clear_shape();
  for (int i = 0; i < 32; ++i) rank.mutable_inputs(1)->add_shape(1);
  EXPECT_TRUE(Scan(rank).ok());
  rank.mutable_inputs(1)->add_shape(1);
  EXPECT_EQ(Scan(rank).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Scan(rank).message(),
            "inputs[1].shape: more than 32 dimensions (the limit, --max_rank)");
  EXPECT_TRUE(Scan(rank, /*max_rank=*/0).ok());
  std::string unpacked;
  for (int i = 0; i < 40; ++i) unpacked += std::string("\x18\x01", 2);  // field 3, varint
  pb::ModelInferRequest::InferInputTensor input;
  ASSERT_TRUE(input.ParseFromString(unpacked));
  ASSERT_EQ(input.shape_size(), 40);  // protobuf reads it as 40 dimensions too
  pb::ModelInferRequest unpacked_request;
  *unpacked_request.add_inputs() = input;
  std::string wire = "\x2a";  // field 5, length-delimited
  wire += static_cast<char>(unpacked.size());
  wire += unpacked;
  EXPECT_EQ(ScanModelInferRequest(testing::ToByteBuffer(wire), 32).code(),
            absl::StatusCode::kResourceExhausted);

  // Fields outside the specification: protobuf keeps each as an unknown field.
  const auto with_unknown = [](const std::string& field, int count) {
    std::string wire = ValidRequest().SerializeAsString();
    for (int i = 0; i < count; ++i) wire += field;
    return ScanModelInferRequest(testing::ToByteBuffer(wire), 32);
  };
  for (const std::string& field :
       {std::string("\x7a\x00", 2),   // field 15, length-delimited
        std::string("\x78\x00", 2),   // field 15, varint
        std::string("\x08\x00", 2)}) {  // model_name (field 1) as a varint
    EXPECT_TRUE(with_unknown(field, kMaxUnknownFields).ok()) << absl::CEscape(field);
    EXPECT_THAT(std::string(with_unknown(field, kMaxUnknownFields + 1).message()),
                HasSubstr("more than 64 fields that the specification does not define"))
        << absl::CEscape(field);
  }
  {
    pb::ModelInferRequest::InferInputTensor input;
    input.set_name("x");
    std::string unknown_in_input = input.SerializeAsString();
    for (int i = 0; i <= kMaxUnknownFields; ++i) unknown_in_input += std::string("\x30\x01", 2);
    pb::InferParameter value;
    std::string unknown_in_value = value.SerializeAsString();
    for (int i = 0; i <= kMaxUnknownFields; ++i) unknown_in_value += std::string("\x30\x01", 2);
    ASSERT_TRUE(value.ParseFromString(unknown_in_value));  // protobuf keeps them all
    std::string entry = std::string("\x0a\x01k\x12", 4);
    entry += static_cast<char>(unknown_in_value.size() & 0x7f | 0x80);
    entry += static_cast<char>(unknown_in_value.size() >> 7);
    entry += unknown_in_value;
    std::string wire = "\x2a";
    wire += static_cast<char>(unknown_in_input.size() & 0x7f | 0x80);
    wire += static_cast<char>(unknown_in_input.size() >> 7);
    wire += unknown_in_input;
    EXPECT_EQ(ScanModelInferRequest(testing::ToByteBuffer(wire), 32).code(),
              absl::StatusCode::kInvalidArgument);
    std::string map = "\x22";
    map += static_cast<char>(entry.size() & 0x7f | 0x80);
    map += static_cast<char>(entry.size() >> 7);
    map += entry;
    pb::ModelInferRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(map));
    EXPECT_EQ(ScanModelInferRequest(testing::ToByteBuffer(map), 32).code(),
              absl::StatusCode::kInvalidArgument);
  }

  pb::ModelInferRequest ints = ValidRequest();
  ints.mutable_inputs(0)->mutable_contents()->add_int64_contents(1);
  EXPECT_THAT(std::string(Scan(ints).message()),
              HasSubstr("inputs[0].contents: field 3 holds integer, bool or bytes values"));
  pb::ModelInferRequest floats = ValidRequest();
  floats.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  floats.mutable_inputs(0)->mutable_contents()->add_fp64_contents(1);
  EXPECT_TRUE(Scan(floats).ok());

  for (const std::string& garbage :
       {std::string("\x2a\x05\x0a\x7f", 4), std::string("\x2a\xff\xff\xff\xff\x0f", 6),
        std::string("\x00", 1), std::string("\x2a\x02\x1a\x05", 4)}) {
    pb::ModelInferRequest parsed;
    EXPECT_FALSE(parsed.ParseFromString(garbage));  // protobuf refuses it too
    EXPECT_EQ(ScanModelInferRequest(testing::ToByteBuffer(garbage), 32).code(),
              absl::StatusCode::kInvalidArgument)
        << absl::CEscape(garbage);
  }
}

// --- ModelInfer over a real connection. ---

struct InferenceClient {
  explicit InferenceClient(const TestServer& server)
      : stub(pb::GRPCInferenceService::NewStub(server.channel)) {}
  grpc::Status Infer(const pb::ModelInferRequest& request, pb::ModelInferResponse* response,
                     const std::string& token = "") {
    grpc::ClientContext context;
    context.set_deadline(testing::SafetyDeadline());
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    return stub->ModelInfer(&context, request, response);
  }
  std::unique_ptr<pb::GRPCInferenceService::Stub> stub;
};

pb::ModelInferRequest::InferInputTensor* AddInput(pb::ModelInferRequest* request,
                                                  const std::string& name, DType dtype,
                                                  std::vector<int64_t> shape,
                                                  const std::vector<double>& values) {
  pb::ModelInferRequest::InferInputTensor* input = request->add_inputs();
  input->set_name(name);
  input->set_datatype(std::string(DatatypeName(dtype)));
  for (int64_t dim : shape) input->add_shape(dim);
  request->add_raw_input_contents(EncodeValues(dtype, values));
  return input;
}

std::vector<long double> OutputValues(const pb::ModelInferResponse& response, int index,
                                      DType dtype) {
  const std::string& bytes = response.raw_output_contents(index);
  return ref::Unpack(dtype, {bytes.data(), bytes.size()});
}

TEST(InferenceGrpcTest, ForwardAndBackwardMatchTheOracleForEveryDatatype) {
  TestServer server = StartTestServer();
  InferenceClient client(server);
  const std::vector<double> x = {-3.5, -1.25, -0.5, 0.125, 0.75, 1.5, 2.25, 4.0};
  const std::vector<double> dy = {0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 1.0, -2.0};
  const ActivationSpec spec = *ParseActivationSpec("gelu(approximate=tanh)");
  for (DType dtype : AllDTypes()) {
    SCOPED_TRACE(DTypeName(dtype));
    const ref::Format format = ref::FormatOf(dtype);
    pb::ModelInferRequest request;
    request.set_model_name("gelu");
    request.set_model_version("1");
    request.set_id(absl::StrCat("call-", DTypeName(dtype)));
    (*request.mutable_parameters())["approximate"].set_string_param("tanh");
    AddInput(&request, "x", dtype, {2, 4}, x);
    AddInput(&request, "dy", dtype, {2, 4}, dy);
    request.add_outputs()->set_name("dx");
    request.add_outputs()->set_name("y");
    pb::ModelInferResponse response;
    grpc::Status status = client.Infer(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.model_name(), "gelu");
    EXPECT_EQ(response.model_version(), "1");
    EXPECT_EQ(response.id(), request.id());
    ASSERT_EQ(response.outputs_size(), 2);
    ASSERT_EQ(response.raw_output_contents_size(), 2);
    EXPECT_EQ(response.outputs(0).name(), "dx");
    EXPECT_EQ(response.outputs(1).name(), "y");
    for (const auto& output : response.outputs()) {
      EXPECT_EQ(output.datatype(), DatatypeName(dtype));
      EXPECT_EQ(std::vector<int64_t>(output.shape().begin(), output.shape().end()),
                (std::vector<int64_t>{2, 4}));
    }
    const std::vector<long double> got_dx = OutputValues(response, 0, dtype);
    const std::vector<long double> got_y = OutputValues(response, 1, dtype);
    ASSERT_EQ(got_y.size(), x.size());
    ASSERT_EQ(got_dx.size(), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      // The inputs as the server saw them: rounded to the dtype.
      const long double xi = ref::RoundTo(format, x[i]);
      const long double gi = ref::RoundTo(format, dy[i]);
      const long double y = ref::Forward(spec, xi);
      const long double dx = ref::Backward(spec, xi, gi);
      EXPECT_LE(std::fabs(static_cast<double>(got_y[i] - y)),
                4 * static_cast<double>(ref::Ulp(format, y)))
          << "x=" << x[i];
      EXPECT_LE(std::fabs(static_cast<double>(got_dx[i] - dx)),
                4 * static_cast<double>(ref::Ulp(format, dx)) + 1e-6 * std::fabs(dy[i]))
          << "x=" << x[i];
    }
  }
}

TEST(InferenceGrpcTest, TypedContentsGiveTheRawContentsResults) {
  TestServer server = StartTestServer();
  InferenceClient client(server);
  const std::vector<double> x = {-2, -0.5, 0, 0.5, 2, 3};
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    pb::ModelInferRequest raw;
    raw.set_model_name("elu");
    (*raw.mutable_parameters())["alpha"].set_int64_param(2);
    AddInput(&raw, "x", dtype, {6}, x);
    pb::ModelInferRequest typed = raw;
    typed.clear_raw_input_contents();
    for (double value : x) {
      if (dtype == DType::kFloat32) {
        typed.mutable_inputs(0)->mutable_contents()->add_fp32_contents(static_cast<float>(value));
      } else {
        typed.mutable_inputs(0)->mutable_contents()->add_fp64_contents(value);
      }
    }
    pb::ModelInferResponse from_raw, from_typed;
    ASSERT_TRUE(client.Infer(raw, &from_raw).ok());
    grpc::Status status = client.Infer(typed, &from_typed);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(from_typed.raw_output_contents_size(), 2);
    EXPECT_EQ(from_typed.raw_output_contents(0), from_raw.raw_output_contents(0));
    EXPECT_EQ(from_typed.raw_output_contents(1), from_raw.raw_output_contents(1));
    const ActivationSpec spec = *ParseActivationSpec("elu(alpha=2)");
    const std::vector<long double> y = OutputValues(from_typed, 0, dtype);
    for (size_t i = 0; i < x.size(); ++i) {
      const long double expected = ref::Forward(spec, x[i]);
      EXPECT_LE(std::fabs(static_cast<double>(y[i] - expected)),
                4 * static_cast<double>(ref::Ulp(ref::FormatOf(dtype), expected)));
    }
  }
}

TEST(InferenceGrpcTest, PreluWeightGradientIsTheSumOverEachChannel) {
  TestServer server = StartTestServer();
  InferenceClient client(server);
  pb::ModelInferRequest request;
  request.set_model_name("prelu");
  AddInput(&request, "x", DType::kFloat64, {2, 3}, {1, -2, 3, -4, 5, -6});
  AddInput(&request, "weight", DType::kFloat64, {3}, {0.1, 0.2, 0.3});
  request.add_outputs()->set_name("dweight");
  pb::ModelInferResponse response;
  grpc::Status status = client.Infer(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.outputs_size(), 1);  // dx was computed, not sent
  EXPECT_EQ(response.outputs(0).name(), "dweight");
  EXPECT_EQ(response.outputs(0).shape(0), 3);
  // dy = 1: the weight's gradient is the sum of x over x <= 0 in its channel.
  const std::vector<long double> dweight = OutputValues(response, 0, DType::kFloat64);
  EXPECT_EQ(dweight, (std::vector<long double>{-4, -2, -6}));
}

TEST(InferenceGrpcTest, BadRequestsFailWithTheirFieldAndTheServerGoesOn) {
  TestServer server = StartTestServer();
  InferenceClient client(server);
  pb::ModelInferRequest both;
  both.set_model_name("relu");
  AddInput(&both, "x", DType::kFloat32, {1}, {1})->mutable_contents()->add_fp32_contents(1);
  pb::ModelInferRequest counts;
  counts.set_model_name("relu");
  AddInput(&counts, "x", DType::kFloat32, {1}, {1});
  counts.add_inputs()->set_name("dy");
  pb::ModelInferRequest wrong_field;
  wrong_field.set_model_name("relu");
  pb::ModelInferRequest::InferInputTensor* input = wrong_field.add_inputs();
  input->set_name("x");
  input->set_datatype("FP32");
  input->add_shape(1);
  input->mutable_contents()->add_fp64_contents(1);
  pb::ModelInferRequest half;
  half.set_model_name("relu");
  input = half.add_inputs();
  input->set_name("x");
  input->set_datatype("FP16");
  input->add_shape(1);
  input->mutable_contents()->add_fp32_contents(1);
  pb::ModelInferRequest unknown;
  unknown.set_model_name("swish");
  struct Case {
    pb::ModelInferRequest request;
    grpc::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {both, grpc::StatusCode::INVALID_ARGUMENT,
       "inputs[0].contents: given together with raw_input_contents"},
      {counts, grpc::StatusCode::INVALID_ARGUMENT,
       "raw_input_contents: 1 entry for 2 inputs"},
      {wrong_field, grpc::StatusCode::INVALID_ARGUMENT,
       "inputs[0].contents: an FP32 tensor's elements go in fp32_contents"},
      {half, grpc::StatusCode::INVALID_ARGUMENT,
       "inputs[0].contents: FP16 tensors travel in raw_input_contents"},
      {unknown, grpc::StatusCode::NOT_FOUND, "model 'swish' is not served here"},
  };
  for (const Case& c : cases) {
    pb::ModelInferResponse response;
    grpc::Status status = client.Infer(c.request, &response);
    EXPECT_EQ(status.error_code(), c.code) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
    // ... and the next call is served.
    pb::ModelInferRequest good;
    good.set_model_name("relu");
    AddInput(&good, "x", DType::kFloat32, {2}, {-1, 1});
    ASSERT_TRUE(client.Infer(good, &response).ok());
    EXPECT_EQ(response.raw_output_contents(0), EncodeValues(DType::kFloat32, {0, 1}));
  }
  std::string reply;
  grpc::Status garbage = testing::RawUnaryCall(
      server.channel, "/inference.GRPCInferenceService/ModelInfer", "\x2a\x7f", &reply);
  EXPECT_EQ(garbage.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(garbage.error_message(), HasSubstr("malformed ModelInferRequest"));
  EXPECT_EQ(server.server->metrics().RequestCount("ModelInfer", absl::StatusCode::kOk), 5);
}

// A computation held until its call is cancelled, so that deadline and admission tests
// do not depend on how fast the kernels are.
struct Hold {
  std::atomic<bool> holding{true};
  std::atomic<int> started{0};
  void operator()(const ComputeItem&, const std::atomic<bool>* cancelled) {
    started.fetch_add(1);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (holding.load() && !(cancelled != nullptr && cancelled->load()) &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
};

pb::ModelInferRequest LargeRelu() {  // over inline_bytes: computed on the pool
  pb::ModelInferRequest request;
  request.set_model_name("relu");
  AddInput(&request, "x", DType::kFloat32, {1 << 17}, std::vector<double>(1 << 17, -1.0));
  return request;
}

TEST(InferenceGrpcTest, TheTimeoutParameterEndsTheComputation) {
  auto hold = std::make_shared<Hold>();
  ServerOptions options;
  options.engine_before_item_for_testing = [hold](const ComputeItem& item,
                                                  const std::atomic<bool>* cancelled) {
    (*hold)(item, cancelled);
  };
  TestServer server = StartTestServer(options);
  InferenceClient client(server);
  pb::ModelInferRequest request = LargeRelu();
  (*request.mutable_parameters())["timeout"].set_int64_param(200000);  // 0.2 s
  pb::ModelInferResponse response;
  grpc::Status status = client.Infer(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("deadline exceeded"));
  EXPECT_EQ(hold->started.load(), 1);
}

TEST(InferenceGrpcTest, ModelInferAndComputeShareTheCallsInFlight) {
  auto hold = std::make_shared<Hold>();
  ServerOptions options;
  options.max_inflight = 1;
  options.engine_before_item_for_testing = [hold](const ComputeItem& item,
                                                  const std::atomic<bool>* cancelled) {
    (*hold)(item, cancelled);
  };
  TestServer server = StartTestServer(options);
  InferenceClient client(server);
  pb::ModelInferResponse held_response;
  grpc::Status held_status;
  std::thread held([&] { held_status = client.Infer(LargeRelu(), &held_response); });
  while (hold->started.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The slot is taken by the ModelInfer: a Compute is refused, as another ModelInfer is.
  v1::ComputeRequest compute;
  v1::ComputeItem* item = compute.add_items();
  *item->mutable_input() = testing::F32({1}, {1});
  item->mutable_activation()->mutable_relu();
  v1::ComputeResponse compute_response;
  grpc::ClientContext context;
  grpc::Status refused = server.stub->Compute(&context, compute, &compute_response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("too many calls in flight: 1"));
  pb::ModelInferResponse response;
  EXPECT_EQ(client.Infer(LargeRelu(), &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  hold->holding.store(false);
  held.join();
  EXPECT_TRUE(held_status.ok()) << held_status.error_message();
  EXPECT_EQ(held_response.raw_output_contents(0), std::string(4 << 17, '\0'));
  EXPECT_TRUE(client.Infer(LargeRelu(), &response).ok());
}

// The request's own bytes count against --max_tensor_memory_bytes, beside its outputs:
// 192 KiB in and 192 KiB out do not fit in 256 KiB, though either alone would. (Tensors
// this small are malloc'd and charged at their size; pooled ones by 2 MiB.)
TEST(InferenceGrpcTest, TheRequestsBytesCountAgainstTheTensorMemoryLimit) {
  ServerOptions options;
  options.max_tensor_memory_bytes = int64_t{256} << 10;
  TestServer server = StartTestServer(options);
  InferenceClient client(server);
  pb::ModelInferRequest request;
  request.set_model_name("relu");
  AddInput(&request, "x", DType::kFloat32, {3 << 14}, std::vector<double>(3 << 14, -1.0));
  request.add_outputs()->set_name("y");
  pb::ModelInferResponse response;
  grpc::Status status = client.Infer(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("(--max_tensor_memory_bytes)"));
  // Half of it fits, twice: the charge was given back.
  pb::ModelInferRequest half;
  half.set_model_name("relu");
  AddInput(&half, "x", DType::kFloat32, {3 << 13}, std::vector<double>(3 << 13, -1.0));
  half.add_outputs()->set_name("y");
  for (int i = 0; i < 2; ++i) {
    status = client.Infer(half, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.raw_output_contents(0), std::string(3 << 15, '\0'));
  }
}

TEST(InferenceGrpcTest, TokensGuardInferenceButNotTheProbes) {
  testing::TempDir dir;
  const std::string tokens = dir.File("tokens");
  testing::WriteFile(tokens, "secret-token\n");
  ServerOptions options;
  options.auth_token_file = tokens;
  TestServer server = StartTestServer(options);
  InferenceClient client(server);
  pb::ModelInferRequest request;
  request.set_model_name("relu");
  AddInput(&request, "x", DType::kFloat32, {1}, {2});
  pb::ModelInferResponse response;
  grpc::Status status = client.Infer(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(client.Infer(request, &response, "secret-token").ok());
  grpc::ClientContext live_context;
  pb::ServerLiveResponse live;
  EXPECT_TRUE(client.stub->ServerLive(&live_context, {}, &live).ok());
  EXPECT_TRUE(live.live());
  grpc::ClientContext metadata_context;
  pb::ServerMetadataResponse metadata;
  EXPECT_EQ(client.stub->ServerMetadata(&metadata_context, {}, &metadata).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST(InferenceGrpcTest, ServerReadyTurnsFalseWhenTheDrainBegins) {
  ServerOptions options;
  options.drain_delay = absl::Seconds(30);
  TestServer server = StartTestServer(options);
  InferenceClient client(server);
  const auto ready = [&] {
    grpc::ClientContext context;
    pb::ServerReadyResponse response;
    EXPECT_TRUE(client.stub->ServerReady(&context, {}, &response).ok());
    return response.ready();
  };
  const auto model_ready = [&] {
    grpc::ClientContext context;
    pb::ModelReadyRequest request;
    request.set_name("gelu");
    pb::ModelReadyResponse response;
    EXPECT_TRUE(client.stub->ModelReady(&context, request, &response).ok());
    return response.ready();
  };
  EXPECT_TRUE(ready());
  EXPECT_TRUE(model_ready());
  grpc::ClientContext unknown_context;
  pb::ModelReadyRequest unknown;
  unknown.set_name("nope");
  pb::ModelReadyResponse unknown_response;
  EXPECT_EQ(client.stub->ModelReady(&unknown_context, unknown, &unknown_response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  std::thread shutdown([&] { server.server->Shutdown(); });
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ready() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(ready());
  EXPECT_FALSE(model_ready());
  // During the drain delay inference is still served.
  pb::ModelInferRequest request;
  request.set_model_name("relu");
  AddInput(&request, "x", DType::kFloat32, {1}, {2});
  pb::ModelInferResponse response;
  EXPECT_TRUE(client.Infer(request, &response).ok());
  server.server->EndDrainDelay();
  shutdown.join();
}

// The REST door's TLS rests on the actserve executable (civetweb_openssl3.cc); a process
// without it, as this test, must be refused at start, not crash on the first connection.
TEST(InferenceGrpcTest, RestTlsOutsideTheExecutableIsRefusedAtStart) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::MakeCa(dir, "ca"));
  ASSERT_TRUE(testing::MakeLeaf(dir, "server", "ca"));
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.http_address = "127.0.0.1:0";
  options.tls_cert_file = dir.File("server.crt");
  options.tls_key_file = dir.File("server.key");
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(server.status().message()),
              HasSubstr("TLS on the HTTP/REST port needs the actserve executable"));
  // Without TLS the same process serves REST.
  options.tls_cert_file.clear();
  options.tls_key_file.clear();
  server = Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->http_port(), 0);
  EXPECT_THAT(testing::HttpGet((*server)->http_port(), "/v2/health/live"),
              ::testing::StartsWith("HTTP/1.1 200"));
}

}  // namespace
}  // namespace inference
}  // namespace server
}  // namespace actserve
