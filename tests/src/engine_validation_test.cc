// Every way a batch can be malformed is InvalidArgument (ResourceExhausted over
// EngineOptions::max_elements) naming the item and the expectation; valid edge cases
// (empty batch, zero elements, scalars) work; and a failing batch writes nothing.
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/activation_spec.h"
#include "src/engine.h"
#include "src/tensor.h"

namespace actserve {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// A batch of two valid float32 relu items of shape [2,2]; tests break item 1.
struct Batch {
  std::vector<int64_t> shape = {2, 2};
  std::vector<char> data0 = std::vector<char>(16, 0);
  std::vector<char> data1 = std::vector<char>(16, 0);
  std::vector<ComputeItem> items = std::vector<ComputeItem>(2);
  Batch() {
    for (int i = 0; i < 2; ++i) {
      items[i].input = {DType::kFloat32, shape, i == 0 ? data0 : data1};
      items[i].activation = *ParseActivationSpec("relu");
    }
  }
};

absl::Status Validate(const std::vector<ComputeItem>& items, EngineOptions options = {}) {
  Engine engine(options);
  absl::StatusOr<std::vector<ResultSizes>> plan = engine.Plan(items);
  absl::StatusOr<std::vector<ItemResult>> run = engine.ComputeToStrings(items);
  // Plan and Compute validate alike.
  EXPECT_EQ(plan.status().code(), run.status().code());
  return run.status();
}

void ExpectInvalid(const absl::Status& status, const std::vector<std::string>& parts) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  for (const std::string& p : parts) EXPECT_THAT(std::string(status.message()), HasSubstr(p));
}

TEST(EngineValidationTest, ValidBatchIsOk) {
  Batch b;
  EXPECT_TRUE(Validate(b.items).ok());
}

TEST(EngineValidationTest, DataLengthMismatch) {
  Batch b;
  b.items[1].input.data = absl::Span<const char>(b.data1.data(), 12);
  // "items[1].input: 12 bytes of data, but shape [2,2] float32 needs 16"
  ExpectInvalid(Validate(b.items), {"items[1].input", "12", "16", "[2,2]", "float32"});
}

TEST(EngineValidationTest, NegativeDimension) {
  Batch b;
  const std::vector<int64_t> shape = {2, -1};
  b.items[1].input.shape = shape;
  ExpectInvalid(Validate(b.items), {"items[1].input", "-1"});
}

TEST(EngineValidationTest, OverflowingDimensions) {
  Batch b;
  const std::vector<int64_t> shape = {int64_t{1} << 40, int64_t{1} << 40};
  b.items[1].input.shape = shape;
  ExpectInvalid(Validate(b.items), {"items[1].input"});
  // Product fits int64 but its bytes (8 per element) would not.
  const std::vector<int64_t> bytes_overflow = {int64_t{1} << 61};
  b.items[1].input.shape = bytes_overflow;
  ExpectInvalid(Validate(b.items), {"items[1].input"});
}

TEST(EngineValidationTest, UnspecifiedDType) {
  Batch b;
  b.items[1].input.dtype = DType::kUnspecified;
  ExpectInvalid(Validate(b.items), {"items[1].input"});
}

TEST(EngineValidationTest, GradOutputWrongShape) {
  Batch b;
  const std::vector<int64_t> shape = {4};
  std::vector<char> g(16);
  b.items[1].grad_output = ConstTensorView{DType::kFloat32, shape, g};
  ExpectInvalid(Validate(b.items), {"items[1].grad_output", "[4]", "[2,2]"});
}

TEST(EngineValidationTest, GradOutputWrongDType) {
  Batch b;
  std::vector<char> g(32);
  b.items[1].grad_output = ConstTensorView{DType::kFloat64, b.shape, g};
  ExpectInvalid(Validate(b.items), {"items[1].grad_output", "float64", "float32"});
}

TEST(EngineValidationTest, GradOutputWrongByteCount) {
  Batch b;
  std::vector<char> g(12);
  b.items[1].grad_output = ConstTensorView{DType::kFloat32, b.shape, g};
  ExpectInvalid(Validate(b.items), {"items[1].grad_output", "12", "16"});
}

TEST(EngineValidationTest, PreluWeightWrongSizeOrDType) {
  Batch b;
  const std::vector<int64_t> shape = {2, 3, 4};
  std::vector<char> x(24 * 4);
  b.items[1].input = {DType::kFloat32, shape, x};
  b.items[1].activation = *ParseActivationSpec("prelu");
  const std::vector<int64_t> w2_shape = {2};
  std::vector<char> w2(8);
  b.items[1].prelu_weight = ConstTensorView{DType::kFloat32, w2_shape, w2};
  ExpectInvalid(Validate(b.items), {"items[1]", "weight", "3"});  // neither 1 nor C = 3
  const std::vector<int64_t> w3_shape = {3};
  std::vector<char> w3d(24);
  b.items[1].prelu_weight = ConstTensorView{DType::kFloat64, w3_shape, w3d};
  ExpectInvalid(Validate(b.items), {"items[1]", "weight", "float64"});
  std::vector<char> w3_short(8);
  b.items[1].prelu_weight = ConstTensorView{DType::kFloat32, w3_shape, w3_short};
  ExpectInvalid(Validate(b.items), {"items[1]", "weight"});
  // The valid ones: 1 or C values.
  std::vector<char> w3(12);
  b.items[1].prelu_weight = ConstTensorView{DType::kFloat32, w3_shape, w3};
  EXPECT_TRUE(Validate(b.items).ok());
  const std::vector<int64_t> w1_shape = {1};
  std::vector<char> w1(4);
  b.items[1].prelu_weight = ConstTensorView{DType::kFloat32, w1_shape, w1};
  EXPECT_TRUE(Validate(b.items).ok());
}

TEST(EngineValidationTest, SoftmaxDimOutOfRange) {
  Batch b;
  const std::vector<int64_t> shape = {2, 1, 2};
  b.items[1].input.shape = shape;
  for (int dim : {-3, -1, 0, 2}) {
    b.items[1].activation =
        *MakeActivationSpec(ActivationKind::kSoftmax, {{"dim", static_cast<double>(dim)}});
    EXPECT_TRUE(Validate(b.items).ok()) << dim;
  }
  b.items[1].activation = *MakeActivationSpec(ActivationKind::kSoftmax, {{"dim", 3}});
  ExpectInvalid(Validate(b.items), {"items[1]", "dim", "3"});
  b.items[1].activation = *MakeActivationSpec(ActivationKind::kLogSoftmax, {{"dim", -4}});
  ExpectInvalid(Validate(b.items), {"items[1]", "dim", "-4"});
}

TEST(EngineValidationTest, ParametersOutOfRange) {
  Batch b;
  ActivationSpec spec = *ParseActivationSpec("softplus");
  spec.params[0] = 0;  // beta = 0, built by hand past the parser
  b.items[1].activation = spec;
  ExpectInvalid(Validate(b.items), {"items[1]", "beta"});
}

TEST(EngineValidationTest, TooManyElements) {
  Batch b;  // 8 elements in all
  EngineOptions options;
  options.max_elements = 7;
  const absl::Status status = Validate(b.items, options);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("7"));
  options.max_elements = 8;
  EXPECT_TRUE(Validate(b.items, options).ok());
  options.max_elements = 0;  // unlimited
  EXPECT_TRUE(Validate(b.items, options).ok());
}

TEST(EngineValidationTest, TooManyItems) {
  Batch b;  // 2 items
  EngineOptions options;
  options.max_items = 1;
  const absl::Status status = Validate(b.items, options);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()), AllOf(HasSubstr("2 items"), HasSubstr("1")));
  options.max_items = 2;
  EXPECT_TRUE(Validate(b.items, options).ok());
  options.max_items = 0;  // unlimited
  EXPECT_TRUE(Validate(b.items, options).ok());
}

TEST(EngineValidationTest, TooManyDimensions) {
  Batch b;
  const std::vector<int64_t> rank5 = {1, 1, 2, 1, 2};
  b.items[1].input.shape = rank5;
  EngineOptions options;
  options.max_rank = 4;
  const absl::Status status = Validate(b.items, options);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr("items[1].input.shape"), HasSubstr("5 dimensions"),
                    HasSubstr("4")));
  options.max_rank = 5;
  EXPECT_TRUE(Validate(b.items, options).ok());

  // The PReLU weight and grad_output are held to the same limit.
  const std::vector<float> weight = {0.25f};
  const std::vector<int64_t> weight_shape = {1, 1, 1, 1, 1, 1};
  Batch prelu;
  prelu.items[0].activation = *ParseActivationSpec("prelu");
  prelu.items[0].prelu_weight =
      ConstTensorView{DType::kFloat32, weight_shape,
                      absl::Span<const char>(reinterpret_cast<const char*>(weight.data()), 4)};
  const absl::Status weight_status = Validate(prelu.items, options);
  EXPECT_EQ(weight_status.code(), absl::StatusCode::kResourceExhausted) << weight_status;
  EXPECT_THAT(std::string(weight_status.message()),
              HasSubstr("items[0].activation.prelu.weight.shape"));
}

TEST(EngineValidationTest, BuffersOfTheWrongSize) {
  Batch b;
  Engine engine(EngineOptions{});
  std::vector<char> out0(16), dx0(16), out1(16), dx1(12);
  std::vector<ItemBuffers> buffers = {{absl::MakeSpan(out0), absl::MakeSpan(dx0), {}},
                                      {absl::MakeSpan(out1), absl::MakeSpan(dx1), {}}};
  absl::Status status = engine.Compute(b.items, buffers);
  ExpectInvalid(status, {"1]", "12", "16"});
  // Too few buffers.
  status = engine.Compute(b.items, absl::MakeSpan(buffers).subspan(0, 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  // A buffer for a result the mode does not produce must be empty.
  b.items[1].mode = Mode::kForward;
  dx1.resize(16);
  buffers[1].grad_input = absl::MakeSpan(dx1);
  status = engine.Compute(b.items, buffers);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  buffers[1].grad_input = {};
  EXPECT_TRUE(engine.Compute(b.items, buffers).ok());
}

// All or nothing: when item 1 is bad, item 0's buffers are untouched.
TEST(EngineValidationTest, NothingIsWrittenWhenALaterItemIsInvalid) {
  Batch b;
  const float x0[4] = {-1, 2, -3, 4};
  std::memcpy(b.data0.data(), x0, 16);
  b.items[1].input.data = absl::Span<const char>(b.data1.data(), 12);
  Engine engine(EngineOptions{});
  std::vector<char> out0(16, 0x5A), dx0(16, 0x5A), out1(16, 0x5A), dx1(16, 0x5A);
  std::vector<ItemBuffers> buffers = {{absl::MakeSpan(out0), absl::MakeSpan(dx0), {}},
                                      {absl::MakeSpan(out1), absl::MakeSpan(dx1), {}}};
  EXPECT_FALSE(engine.Compute(b.items, buffers).ok());
  EXPECT_EQ(out0, std::vector<char>(16, 0x5A));
  EXPECT_EQ(dx0, std::vector<char>(16, 0x5A));
  // And with item 1 fixed, item 0 is computed.
  b.items[1].input.data = b.data1;
  ASSERT_TRUE(engine.Compute(b.items, buffers).ok());
  float y0[4];
  std::memcpy(y0, out0.data(), 16);
  EXPECT_EQ(std::vector<float>(y0, y0 + 4), (std::vector<float>{0, 2, 0, 4}));
}

TEST(EngineValidationTest, EmptyBatch) {
  Engine engine(EngineOptions{});
  absl::StatusOr<std::vector<ItemResult>> r = engine.ComputeToStrings({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->empty());
}

TEST(EngineValidationTest, ZeroElementTensors) {
  Engine engine(EngineOptions{});
  for (const char* spec : {"relu", "gelu", "softmax", "log_softmax(dim=0)", "prelu"}) {
    for (const std::vector<int64_t>& shape :
         {std::vector<int64_t>{0}, std::vector<int64_t>{3, 0}}) {
      ComputeItem item;
      item.input = {DType::kFloat32, shape, {}};
      item.activation = *ParseActivationSpec(spec);
      absl::StatusOr<std::vector<ItemResult>> r = engine.ComputeToStrings({&item, 1});
      ASSERT_TRUE(r.ok()) << spec << " " << ShapeToString(shape) << ": " << r.status();
      ASSERT_EQ(r->size(), 1u);
      EXPECT_TRUE((*r)[0].output.empty());
      EXPECT_TRUE((*r)[0].grad_input.empty());
    }
  }
}

// An empty tensor whose other dimensions multiply past 2^63 is still valid (it has no
// elements) and must not overflow the layout arithmetic (found by the request fuzzer;
// the UBSan build of this test fails on the overflow).
TEST(EngineValidationTest, ZeroElementTensorsWithHugeOtherDimensions) {
  Engine engine(EngineOptions{});
  const std::vector<int64_t> shape = {0, 3, int64_t{1} << 40, int64_t{1} << 40};
  const std::vector<int64_t> weight_shape = {3};
  const std::vector<float> weights = {0.1f, 0.2f, 0.3f};
  for (const char* spec : {"prelu", "softmax(dim=3)", "log_softmax(dim=0)"}) {
    ComputeItem item;
    item.input = {DType::kFloat32, shape, {}};
    item.activation = *ParseActivationSpec(spec);
    if (item.activation.kind == ActivationKind::kPrelu) {
      item.prelu_weight = ConstTensorView{
          DType::kFloat32, weight_shape,
          {reinterpret_cast<const char*>(weights.data()), weights.size() * sizeof(float)}};
    }
    absl::StatusOr<std::vector<ItemResult>> r = engine.ComputeToStrings({&item, 1});
    ASSERT_TRUE(r.ok()) << spec << ": " << r.status();
    EXPECT_TRUE((*r)[0].output.empty()) << spec;
    EXPECT_TRUE((*r)[0].grad_input.empty()) << spec;
  }
}

TEST(EngineValidationTest, ScalarIsOneElement) {
  Engine engine(EngineOptions{});
  const double x = -3;
  ComputeItem item;
  item.input = {DType::kFloat64, {}, {reinterpret_cast<const char*>(&x), 8}};
  item.activation = *ParseActivationSpec("elu");
  absl::StatusOr<std::vector<ItemResult>> r = engine.ComputeToStrings({&item, 1});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ((*r)[0].output.size(), 8u);
  double y;
  std::memcpy(&y, (*r)[0].output.data(), 8);
  EXPECT_DOUBLE_EQ(y, std::expm1(-3.0));
  // A scalar's data must be exactly one element.
  item.input.data = {reinterpret_cast<const char*>(&x), 4};
  EXPECT_EQ(engine.ComputeToStrings({&item, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EngineValidationTest, PlanGivesResultSizes) {
  Engine engine(EngineOptions{});
  const std::vector<int64_t> shape = {2, 3, 5};
  std::vector<char> x(30 * 2);
  const std::vector<int64_t> w_shape = {3};
  std::vector<char> w(6);
  std::vector<ComputeItem> items(3);
  items[0].input = {DType::kFloat16, shape, x};
  items[0].activation = *ParseActivationSpec("prelu");
  items[0].prelu_weight = ConstTensorView{DType::kFloat16, w_shape, w};
  items[1] = items[0];
  items[1].mode = Mode::kForward;
  items[2].input = {DType::kFloat16, shape, x};
  items[2].activation = *ParseActivationSpec("tanh");
  items[2].mode = Mode::kBackward;
  absl::StatusOr<std::vector<ResultSizes>> plan = engine.Plan(items);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ((*plan)[0].elements, 30);
  EXPECT_EQ((*plan)[0].output_bytes, 60u);
  EXPECT_EQ((*plan)[0].grad_input_bytes, 60u);
  EXPECT_EQ((*plan)[0].grad_weight_bytes, 6u);
  EXPECT_EQ((*plan)[0].grad_weight_elements, 3);
  EXPECT_EQ((*plan)[1].grad_input_bytes, 0u);
  EXPECT_EQ((*plan)[1].grad_weight_bytes, 0u);
  EXPECT_EQ((*plan)[2].output_bytes, 0u);
  EXPECT_EQ((*plan)[2].grad_input_bytes, 60u);
  EXPECT_EQ((*plan)[2].grad_weight_bytes, 0u);
}

// Buffers may alias the item's own input and grad_output: computing in place gives the
// same bytes as computing out of place.
TEST(EngineValidationTest, InPlaceEqualsOutOfPlace) {
  Engine engine(EngineOptions{});
  const int64_t n = 1001;
  const std::vector<int64_t> shape = {7, 143};
  for (const char* spec : {"gelu", "mish", "softmax", "log_softmax(dim=0)", "hardswish"}) {
    std::vector<float> x(n), g(n);
    for (int64_t i = 0; i < n; ++i) {
      x[i] = static_cast<float>((i * 37 % 101) / 10.0 - 5);
      g[i] = static_cast<float>((i * 13 % 17) / 4.0 - 2);
    }
    ComputeItem item;
    item.input = {DType::kFloat32, shape, {reinterpret_cast<const char*>(x.data()), 4 * n}};
    item.grad_output =
        ConstTensorView{DType::kFloat32, shape, {reinterpret_cast<const char*>(g.data()), 4 * n}};
    item.activation = *ParseActivationSpec(spec);
    absl::StatusOr<std::vector<ItemResult>> want = engine.ComputeToStrings({&item, 1});
    ASSERT_TRUE(want.ok()) << want.status();
    ItemBuffers in_place = {{reinterpret_cast<char*>(x.data()), 4 * static_cast<size_t>(n)},
                            {reinterpret_cast<char*>(g.data()), 4 * static_cast<size_t>(n)},
                            {}};
    ASSERT_TRUE(engine.Compute({&item, 1}, {&in_place, 1}).ok()) << spec;
    EXPECT_EQ(std::memcmp(x.data(), (*want)[0].output.data(), 4 * n), 0) << spec;
    EXPECT_EQ(std::memcmp(g.data(), (*want)[0].grad_input.data(), 4 * n), 0) << spec;
  }
}

TEST(EngineValidationTest, CancelledBeforeStartReturnsCancelled) {
  Engine engine(EngineOptions{});
  const int64_t n = int64_t{1} << 20;  // many chunks
  std::vector<float> x(n, 1.0f);
  const std::vector<int64_t> shape = {n};
  ComputeItem item;
  item.input = {DType::kFloat32, shape, {reinterpret_cast<const char*>(x.data()), 4 * n}};
  item.activation = *ParseActivationSpec("relu");
  std::atomic<bool> cancelled{true};
  EXPECT_EQ(engine.ComputeToStrings({&item, 1}, &cancelled).status().code(),
            absl::StatusCode::kCancelled);
  cancelled = false;
  EXPECT_TRUE(engine.ComputeToStrings({&item, 1}, &cancelled).ok());
}

}  // namespace
}  // namespace actserve
