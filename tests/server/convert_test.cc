// proto/convert.h: the wire <-> core conversions, without a server. Checks that the
// catalogue and the proto agree name for name, that specs round-trip, that items view
// the request's memory instead of copying it, and the errors' places.
#include "proto/convert.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "src/catalogue.h"

namespace actserve {
namespace wire {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(DTypeTest, RoundTripsEveryDType) {
  for (DType dtype : AllDTypes()) EXPECT_EQ(DTypeFromProto(DTypeToProto(dtype)), dtype);
  EXPECT_EQ(DTypeFromProto(v1::DTYPE_FLOAT32), DType::kFloat32);
  EXPECT_EQ(DTypeFromProto(v1::DTYPE_BFLOAT16), DType::kBFloat16);
  EXPECT_EQ(DTypeToProto(DType::kFloat16), v1::DTYPE_FLOAT16);
  EXPECT_EQ(DTypeToProto(DType::kUnspecified), v1::DTYPE_UNSPECIFIED);
}

TEST(DTypeTest, UnknownNumbersAreUnspecified) {
  EXPECT_EQ(DTypeFromProto(static_cast<v1::DType>(9)), DType::kUnspecified);
  EXPECT_EQ(DTypeFromProto(static_cast<v1::DType>(-1)), DType::kUnspecified);
  EXPECT_FALSE(IsKnownDType(9));
  EXPECT_TRUE(IsKnownDType(0));
  v1::Tensor tensor;
  tensor.set_dtype(static_cast<v1::DType>(9));
  EXPECT_THAT(CheckDTypeNumber(tensor, "x").message(),
              HasSubstr("x.dtype: unknown dtype number 9"));
}

TEST(ModeTest, MapsEveryMode) {
  EXPECT_EQ(*ModeFromProto(v1::MODE_UNSPECIFIED, "m"), Mode::kForwardBackward);
  EXPECT_EQ(*ModeFromProto(v1::MODE_FORWARD, "m"), Mode::kForward);
  EXPECT_EQ(*ModeFromProto(v1::MODE_BACKWARD, "m"), Mode::kBackward);
  EXPECT_EQ(*ModeFromProto(v1::MODE_FORWARD_BACKWARD, "m"), Mode::kForwardBackward);
  for (Mode mode : {Mode::kForward, Mode::kBackward, Mode::kForwardBackward}) {
    EXPECT_EQ(*ModeFromProto(ModeToProto(mode), "m"), mode);
  }
  absl::StatusOr<Mode> unknown = ModeFromProto(static_cast<v1::Mode>(7), "items[3].mode");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("items[3].mode: unknown mode number 7"));
}

// The catalogue is the single source of names: every entry must be the oneof field of
// the same name and number, and every non-tensor parameter a field of its message.
TEST(CatalogueWireTest, CatalogueAndProtoAgree) {
  const auto* oneof = v1::Activation::descriptor()->FindOneofByName("kind");
  ASSERT_NE(oneof, nullptr);
  ASSERT_EQ(oneof->field_count(), kNumActivations);
  for (const ActivationInfo& info : Catalogue()) {
    const auto* field =
        v1::Activation::descriptor()->FindFieldByNumber(static_cast<int>(info.kind) + 1);
    ASSERT_NE(field, nullptr) << info.name;
    EXPECT_EQ(field->name(), std::string(info.name));
    for (const ParamInfo& param : info.params) {
      const auto* param_field =
          field->message_type()->FindFieldByName(std::string(param.name));
      ASSERT_NE(param_field, nullptr) << info.name << "." << param.name;
      if (param.type == ParamType::kTensor) {
        EXPECT_EQ(param_field->message_type(), v1::Tensor::descriptor());
      }
    }
  }
}

TEST(ActivationTest, DefaultSpecsRoundTripThroughTheWire) {
  for (const ActivationInfo& info : Catalogue()) {
    SCOPED_TRACE(std::string(info.name));
    // Required parameters (threshold's) need values; 0.5 is valid for both.
    std::vector<NamedParam> given;
    for (const ParamInfo& param : info.params) {
      if (param.required) given.push_back({param.name, 0.5});
    }
    absl::StatusOr<ActivationSpec> spec = MakeActivationSpec(info.kind, given);
    ASSERT_TRUE(spec.ok()) << spec.status();
    v1::Activation proto;
    ActivationToProto(*spec, &proto);
    EXPECT_EQ(static_cast<int>(proto.kind_case()), static_cast<int>(info.kind) + 1);
    absl::StatusOr<ActivationSpec> back = ActivationFromProto(proto, "a");
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, *spec);
  }
}

TEST(ActivationTest, SetFieldsOverrideDefaults) {
  v1::Activation proto;
  proto.mutable_softplus()->set_beta(2);
  absl::StatusOr<ActivationSpec> spec = ActivationFromProto(proto, "a");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->kind, ActivationKind::kSoftplus);
  EXPECT_EQ(spec->Param("beta"), 2);
  EXPECT_EQ(spec->Param("threshold"), 20);  // PyTorch's default, unset on the wire

  proto.mutable_gelu()->set_approximate(v1::GELU_APPROXIMATE_TANH);
  spec = ActivationFromProto(proto, "a");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->Param("approximate"), static_cast<double>(GeluApproximate::kTanh));

  proto.mutable_log_softmax()->set_dim(-2);
  spec = ActivationFromProto(proto, "a");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->Param("dim"), -2);

  proto.mutable_leaky_relu();
  spec = ActivationFromProto(proto, "a");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->Param("negative_slope"), 0.01);
}

TEST(ActivationTest, ToProtoSetsEveryParameterExplicitly) {
  absl::StatusOr<ActivationSpec> spec = MakeActivationSpec(ActivationKind::kHardtanh, {});
  ASSERT_TRUE(spec.ok());
  v1::Activation proto;
  ActivationToProto(*spec, &proto);
  ASSERT_TRUE(proto.has_hardtanh());
  EXPECT_TRUE(proto.hardtanh().has_min_val());
  EXPECT_EQ(proto.hardtanh().min_val(), -1);
  EXPECT_TRUE(proto.hardtanh().has_max_val());
  EXPECT_EQ(proto.hardtanh().max_val(), 1);

  spec = MakeActivationSpec(ActivationKind::kPrelu, {});
  ASSERT_TRUE(spec.ok());
  ActivationToProto(*spec, &proto);
  ASSERT_TRUE(proto.has_prelu());
  EXPECT_FALSE(proto.prelu().has_weight());  // documented: the default single weight
}

TEST(ActivationTest, ErrorsArePrefixedWithThePath) {
  v1::Activation proto;
  absl::StatusOr<ActivationSpec> unset =
      ActivationFromProto(proto, "items[0].activation");
  EXPECT_EQ(unset.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(unset.status().message(), "items[0].activation: no activation set");

  proto.mutable_softplus()->set_beta(0);
  absl::StatusOr<ActivationSpec> zero = ActivationFromProto(proto, "items[0].activation");
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero.status().message(), HasSubstr("items[0].activation: softplus: beta"));

  proto.mutable_threshold()->set_value(1);
  absl::StatusOr<ActivationSpec> missing = ActivationFromProto(proto, "p");
  EXPECT_THAT(missing.status().message(), HasSubstr("p: threshold"));
  EXPECT_THAT(missing.status().message(), HasSubstr("threshold"));
}

TEST(ItemsTest, ItemsViewTheRequestWithoutCopying) {
  v1::ComputeRequest request;
  v1::ComputeItem* proto = request.add_items();
  proto->mutable_input()->set_dtype(v1::DTYPE_FLOAT32);
  proto->mutable_input()->add_shape(2);
  proto->mutable_input()->set_data(std::string(8, '\0'));
  proto->mutable_activation()->mutable_prelu()->mutable_weight()->set_dtype(
      v1::DTYPE_FLOAT32);
  proto->mutable_activation()->mutable_prelu()->mutable_weight()->set_data(
      std::string(4, '\0'));
  proto->mutable_activation()->mutable_prelu()->mutable_weight()->add_shape(1);
  proto->set_mode(v1::MODE_BACKWARD);
  *proto->mutable_grad_output() = proto->input();

  absl::StatusOr<std::vector<ComputeItem>> items = ItemsFromProto(request);
  ASSERT_TRUE(items.ok()) << items.status();
  ASSERT_EQ(items->size(), 1u);
  const ComputeItem& item = (*items)[0];
  EXPECT_EQ(item.input.dtype, DType::kFloat32);
  EXPECT_EQ(item.input.data.data(), proto->input().data().data());
  EXPECT_EQ(item.input.shape.data(), proto->input().shape().data());
  EXPECT_THAT(item.input.shape, ElementsAre(2));
  EXPECT_EQ(item.mode, Mode::kBackward);
  EXPECT_EQ(item.activation.kind, ActivationKind::kPrelu);
  ASSERT_TRUE(item.grad_output.has_value());
  EXPECT_EQ(item.grad_output->data.data(), proto->grad_output().data().data());
  ASSERT_TRUE(item.prelu_weight.has_value());
  EXPECT_EQ(item.prelu_weight->data.data(),
            proto->activation().prelu().weight().data().data());
}

TEST(ItemsTest, AbsentOptionalTensorsStayAbsent) {
  v1::ComputeRequest request;
  v1::ComputeItem* proto = request.add_items();
  proto->mutable_input()->set_dtype(v1::DTYPE_FLOAT64);
  proto->mutable_activation()->mutable_prelu();
  absl::StatusOr<std::vector<ComputeItem>> items = ItemsFromProto(request);
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_FALSE((*items)[0].grad_output.has_value());
  EXPECT_FALSE((*items)[0].prelu_weight.has_value());
  EXPECT_EQ((*items)[0].mode, Mode::kForwardBackward);
}

TEST(ItemsTest, ErrorsNameTheItem) {
  v1::ComputeRequest request;
  request.add_items()->mutable_activation()->mutable_relu();
  v1::ComputeItem* bad = request.add_items();
  bad->mutable_activation()->mutable_relu();
  bad->set_mode(static_cast<v1::Mode>(5));
  EXPECT_THAT(ItemsFromProto(request).status().message(),
              HasSubstr("items[1].mode: unknown mode number 5"));

  bad->set_mode(v1::MODE_FORWARD);
  bad->mutable_input()->set_dtype(static_cast<v1::DType>(8));
  EXPECT_THAT(ItemsFromProto(request).status().message(),
              HasSubstr("items[1].input.dtype: unknown dtype number 8"));

  bad->mutable_input()->set_dtype(v1::DTYPE_FLOAT32);
  bad->clear_activation();
  EXPECT_EQ(ItemsFromProto(request).status().message(),
            "items[1].activation: no activation set");

  bad->mutable_activation()->mutable_prelu()->mutable_weight()->set_dtype(
      static_cast<v1::DType>(6));
  EXPECT_THAT(
      ItemsFromProto(request).status().message(),
      HasSubstr("items[1].activation.prelu.weight.dtype: unknown dtype number 6"));
}

TEST(ActivationInfoTest, CopiesTheCatalogueEntry) {
  const ActivationInfo* leaky = FindActivation("leaky_relu");
  ASSERT_NE(leaky, nullptr);
  v1::ActivationInfo proto;
  ActivationInfoToProto(*leaky, &proto);
  EXPECT_EQ(proto.name(), "leaky_relu");
  EXPECT_EQ(proto.description(), std::string(leaky->description));
  EXPECT_EQ(proto.formula(), std::string(leaky->formula));
  EXPECT_EQ(proto.example(), std::string(leaky->example));
  EXPECT_TRUE(proto.elementwise());
  ASSERT_EQ(proto.parameters_size(), 1);
  EXPECT_EQ(proto.parameters(0).default_text(), "0.01");
  EXPECT_EQ(proto.parameters(0).valid_range(), std::string(leaky->params[0].valid_range));

  const ActivationInfo* hardtanh = FindActivation("hardtanh");
  ASSERT_NE(hardtanh, nullptr);
  ActivationInfoToProto(*hardtanh, &proto);
  ASSERT_EQ(proto.parameters_size(), 2);
  EXPECT_EQ(proto.parameters(0).default_text(), "-1");
  EXPECT_EQ(proto.parameters(1).default_text(), "1");

  const ActivationInfo* prelu = FindActivation("prelu");
  ASSERT_NE(prelu, nullptr);
  ActivationInfoToProto(*prelu, &proto);
  ASSERT_EQ(proto.parameters_size(), 1);
  EXPECT_EQ(proto.parameters(0).type(), v1::ParameterInfo::TYPE_TENSOR);
  EXPECT_EQ(proto.parameters(0).default_text(), "0.25");
}

}  // namespace
}  // namespace wire
}  // namespace actserve
