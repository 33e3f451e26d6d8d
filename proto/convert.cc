// Conversions between actserve.v1 messages and the core's types. See convert.h.
//
// Activation parameters are moved through protobuf reflection, driven by the catalogue:
// the catalogue names each parameter, and that name is the proto field. This keeps one
// generic path instead of 24 hand-written cases that could drift from the catalogue, and
// costs a few table lookups per item (negligible next to the tensor work).
#include "proto/convert.h"

#include <array>
#include <cstddef>
#include <iterator>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace actserve {
namespace wire {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;

// Repeated int64 fields are read as absl::Span<const int64_t> without a copy, which is
// only sound when protobuf's element type is int64_t itself.
using ProtoShapeElement =
    std::remove_cv_t<std::remove_pointer_t<decltype(v1::Tensor().shape().data())>>;
static_assert(std::is_same_v<ProtoShapeElement, int64_t>,
              "protobuf's repeated int64 must store int64_t for zero-copy shape views");

// ActivationKind's value is its oneof field number in `Activation.kind` minus one
// (actserve/types.h): ActivationFromProto and FieldTable rely on it. Checked here at
// compile time, so that a renumbered field or a reordered enum does not build.
struct KindAndField {
  ActivationKind kind;
  int field_number;
};
constexpr KindAndField kKindFields[] = {
    {ActivationKind::kRelu, v1::Activation::kReluFieldNumber},
    {ActivationKind::kRelu6, v1::Activation::kRelu6FieldNumber},
    {ActivationKind::kLeakyRelu, v1::Activation::kLeakyReluFieldNumber},
    {ActivationKind::kPrelu, v1::Activation::kPreluFieldNumber},
    {ActivationKind::kElu, v1::Activation::kEluFieldNumber},
    {ActivationKind::kCelu, v1::Activation::kCeluFieldNumber},
    {ActivationKind::kSelu, v1::Activation::kSeluFieldNumber},
    {ActivationKind::kGelu, v1::Activation::kGeluFieldNumber},
    {ActivationKind::kSilu, v1::Activation::kSiluFieldNumber},
    {ActivationKind::kMish, v1::Activation::kMishFieldNumber},
    {ActivationKind::kSoftplus, v1::Activation::kSoftplusFieldNumber},
    {ActivationKind::kHardtanh, v1::Activation::kHardtanhFieldNumber},
    {ActivationKind::kHardsigmoid, v1::Activation::kHardsigmoidFieldNumber},
    {ActivationKind::kHardswish, v1::Activation::kHardswishFieldNumber},
    {ActivationKind::kSigmoid, v1::Activation::kSigmoidFieldNumber},
    {ActivationKind::kTanh, v1::Activation::kTanhFieldNumber},
    {ActivationKind::kLogsigmoid, v1::Activation::kLogsigmoidFieldNumber},
    {ActivationKind::kSoftsign, v1::Activation::kSoftsignFieldNumber},
    {ActivationKind::kTanhshrink, v1::Activation::kTanhshrinkFieldNumber},
    {ActivationKind::kSoftshrink, v1::Activation::kSoftshrinkFieldNumber},
    {ActivationKind::kHardshrink, v1::Activation::kHardshrinkFieldNumber},
    {ActivationKind::kThreshold, v1::Activation::kThresholdFieldNumber},
    {ActivationKind::kSoftmax, v1::Activation::kSoftmaxFieldNumber},
    {ActivationKind::kLogSoftmax, v1::Activation::kLogSoftmaxFieldNumber},
};
// Also in ActivationKind order, so that FieldTable can index it by kind.
constexpr bool KindIsFieldNumberMinusOne() {
  int index = 0;
  for (const KindAndField& entry : kKindFields) {
    if (static_cast<int>(entry.kind) != index++ ||
        static_cast<int>(entry.kind) + 1 != entry.field_number) {
      return false;
    }
  }
  return true;
}
static_assert(KindIsFieldNumberMinusOne(),
              "ActivationKind must equal the Activation.kind oneof field number minus one");
static_assert(std::size(kKindFields) == kNumActivations,
              "every ActivationKind has its Activation.kind field");

// For one activation: its field in `Activation.kind`, and the field of each catalogue
// parameter in the activation's own message (nullptr for the PReLU weight tensor, which
// is data, not a spec parameter).
struct KindFields {
  const FieldDescriptor* kind_field = nullptr;
  std::array<const FieldDescriptor*, kMaxParams> params = {};
};

// Built once from the catalogue and the descriptors; a mismatch of names or parameter
// fields between the two (a programming error that tests/server/convert_test.cc guards
// against) leaves null entries, reported as Internal errors rather than crashing a
// server. Field numbers need no check here: kKindFields is checked at compile time.
const std::array<KindFields, kNumActivations>& FieldTable() {
  static const std::array<KindFields, kNumActivations>* const table = [] {
    auto* fields = new std::array<KindFields, kNumActivations>();
    const Descriptor* activation = v1::Activation::descriptor();
    for (const ActivationInfo& info : Catalogue()) {
      const int index = static_cast<int>(info.kind);
      if (index < 0 || index >= kNumActivations) continue;
      const FieldDescriptor* kind_field =
          activation->FindFieldByNumber(kKindFields[index].field_number);
      if (kind_field == nullptr || kind_field->name() != info.name ||
          kind_field->message_type() == nullptr) {
        continue;
      }
      KindFields& entry = (*fields)[index];
      entry.kind_field = kind_field;
      for (size_t p = 0; p < info.params.size() && p < kMaxParams; ++p) {
        if (info.params[p].type == ParamType::kTensor) continue;
        entry.params[p] =
            kind_field->message_type()->FindFieldByName(std::string(info.params[p].name));
      }
    }
    return fields;
  }();
  return *table;
}

absl::Status PrefixError(absl::string_view path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Enums.

bool IsKnownDType(int number) { return v1::DType_IsValid(number); }

DType DTypeFromProto(v1::DType proto) {
  switch (proto) {
    case v1::DTYPE_FLOAT32:
      return DType::kFloat32;
    case v1::DTYPE_FLOAT64:
      return DType::kFloat64;
    case v1::DTYPE_FLOAT16:
      return DType::kFloat16;
    case v1::DTYPE_BFLOAT16:
      return DType::kBFloat16;
    default:
      return DType::kUnspecified;
  }
}

v1::DType DTypeToProto(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return v1::DTYPE_FLOAT32;
    case DType::kFloat64:
      return v1::DTYPE_FLOAT64;
    case DType::kFloat16:
      return v1::DTYPE_FLOAT16;
    case DType::kBFloat16:
      return v1::DTYPE_BFLOAT16;
    case DType::kUnspecified:
      break;
  }
  return v1::DTYPE_UNSPECIFIED;
}

absl::StatusOr<Mode> ModeFromProto(v1::Mode proto, absl::string_view path) {
  switch (proto) {
    case v1::MODE_UNSPECIFIED:
    case v1::MODE_FORWARD_BACKWARD:
      return Mode::kForwardBackward;
    case v1::MODE_FORWARD:
      return Mode::kForward;
    case v1::MODE_BACKWARD:
      return Mode::kBackward;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": unknown mode number ", static_cast<int>(proto),
                   " (expected 0..3: unspecified, forward, backward, forward_backward)"));
}

v1::Mode ModeToProto(Mode mode) {
  switch (mode) {
    case Mode::kForward:
      return v1::MODE_FORWARD;
    case Mode::kBackward:
      return v1::MODE_BACKWARD;
    case Mode::kForwardBackward:
      break;
  }
  return v1::MODE_FORWARD_BACKWARD;
}

// ---------------------------------------------------------------------------------------
// Activations.

absl::StatusOr<ActivationSpec> ActivationFromProto(const v1::Activation& proto,
                                                   absl::string_view path) {
  if (proto.kind_case() == v1::Activation::KIND_NOT_SET) {
    // A newer client's activation arrives as an unknown field: say so, since "unset"
    // would puzzle a caller who did set one.
    if (!proto.GetReflection()->GetUnknownFields(proto).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": no activation set that this server knows (it knows oneof fields 1..",
          kNumActivations, "; see ListActivations)"));
    }
    return absl::InvalidArgumentError(absl::StrCat(path, ": no activation set"));
  }
  // The oneof case is the field number; ActivationKind is that minus one (kKindFields).
  const int index = static_cast<int>(proto.kind_case()) - 1;
  if (index < 0 || index >= kNumActivations) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": unknown activation field ", index + 1));
  }
  const ActivationKind kind = static_cast<ActivationKind>(index);
  const ActivationInfo& info = GetActivationInfo(kind);
  const KindFields& fields = FieldTable()[index];
  if (fields.kind_field == nullptr) {
    return absl::InternalError(absl::StrCat(path, ": activation '", info.name,
                                            "' is in the catalogue but not on the wire"));
  }

  // Reflection only for activations with parameters: relu and most others have none,
  // and this runs for every item.
  const Message* params = nullptr;
  const Reflection* params_reflection = nullptr;
  std::array<NamedParam, kMaxParams> given;
  size_t num_given = 0;
  for (size_t p = 0; p < info.params.size() && p < kMaxParams; ++p) {
    const ParamInfo& param = info.params[p];
    if (param.type == ParamType::kTensor) continue;
    const FieldDescriptor* field = fields.params[p];
    if (field == nullptr) {
      return absl::InternalError(absl::StrCat(path, ": ", info.name, " parameter '",
                                              param.name, "' has no wire field"));
    }
    if (params == nullptr) {
      params = &proto.GetReflection()->GetMessage(proto, fields.kind_field);
      params_reflection = params->GetReflection();
    }
    // Fields without presence (gelu's enum) are always given: their zero is the default.
    if (field->has_presence() && !params_reflection->HasField(*params, field)) continue;
    double value = 0;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_DOUBLE:
        value = params_reflection->GetDouble(*params, field);
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        value = params_reflection->GetInt32(*params, field);
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        // Unknown enum numbers are kept by proto3; the spec check rejects the index.
        value = params_reflection->GetEnumValue(*params, field);
        break;
      default:
        return absl::InternalError(absl::StrCat(path, ": ", info.name, " parameter '",
                                                param.name, "' has an unexpected type"));
    }
    given[num_given++] = NamedParam{param.name, value};
  }
  absl::StatusOr<ActivationSpec> spec =
      MakeActivationSpec(kind, absl::MakeConstSpan(given.data(), num_given));
  if (!spec.ok()) return PrefixError(path, spec.status());
  return spec;
}

void ActivationToProto(const ActivationSpec& spec, v1::Activation* proto) {
  proto->Clear();
  const int index = static_cast<int>(spec.kind);
  if (index < 0 || index >= kNumActivations) return;
  const KindFields& fields = FieldTable()[index];
  if (fields.kind_field == nullptr) return;
  // MutableMessage selects the oneof case even when no parameter is set (relu).
  Message* params = proto->GetReflection()->MutableMessage(proto, fields.kind_field);
  const Reflection* params_reflection = params->GetReflection();
  const ActivationInfo& info = GetActivationInfo(spec.kind);
  for (size_t p = 0; p < info.params.size() && p < kMaxParams; ++p) {
    const FieldDescriptor* field = fields.params[p];
    if (field == nullptr) continue;  // the PReLU weight tensor: see convert.h
    const double value = spec.params[p];
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_DOUBLE:
        params_reflection->SetDouble(params, field, value);
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        params_reflection->SetInt32(params, field, static_cast<int32_t>(value));
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        params_reflection->SetEnumValue(params, field, static_cast<int>(value));
        break;
      default:
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Tensors.

ConstTensorView TensorViewFromProto(const v1::Tensor& proto) {
  ConstTensorView view;
  view.dtype = DTypeFromProto(proto.dtype());
  view.shape = absl::MakeConstSpan(proto.shape().data(),
                                   static_cast<size_t>(proto.shape().size()));
  view.data = absl::MakeConstSpan(proto.data().data(), proto.data().size());
  return view;
}

absl::Status CheckDTypeNumber(const v1::Tensor& proto, absl::string_view path) {
  const int number = static_cast<int>(proto.dtype());
  if (IsKnownDType(number)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(path, ".dtype: unknown dtype number ", number,
                   " (expected 1..4: float32, float64, float16, bfloat16)"));
}

void SetTensorHeader(DType dtype, absl::Span<const int64_t> shape, v1::Tensor* proto) {
  proto->set_dtype(DTypeToProto(dtype));
  proto->mutable_shape()->Assign(shape.begin(), shape.end());
}

// ---------------------------------------------------------------------------------------
// Compute requests.

absl::StatusOr<std::vector<ComputeItem>> ItemsFromProto(
    const v1::ComputeRequest& request) {
  std::vector<ComputeItem> items;
  items.reserve(static_cast<size_t>(request.items_size()));
  for (int i = 0; i < request.items_size(); ++i) {
    const v1::ComputeItem& proto = request.items(i);
    auto place = [i](absl::string_view field) {
      return absl::StrCat("items[", i, "].", field);
    };
    ComputeItem item;

    // Error paths are built only when needed.
    if (!IsKnownDType(proto.input().dtype())) {
      return CheckDTypeNumber(proto.input(), place("input"));
    }
    item.input = TensorViewFromProto(proto.input());

    absl::StatusOr<Mode> mode = ModeFromProto(
        proto.mode(), v1::Mode_IsValid(proto.mode()) ? std::string() : place("mode"));
    if (!mode.ok()) return mode.status();
    item.mode = *mode;

    // The path only for an error: building it for every item cost an allocation.
    absl::StatusOr<ActivationSpec> spec = ActivationFromProto(proto.activation(), "");
    if (!spec.ok()) return ActivationFromProto(proto.activation(), place("activation")).status();
    item.activation = *spec;

    if (proto.has_grad_output()) {
      if (!IsKnownDType(proto.grad_output().dtype())) {
        return CheckDTypeNumber(proto.grad_output(), place("grad_output"));
      }
      item.grad_output = TensorViewFromProto(proto.grad_output());
    }

    if (proto.activation().has_prelu() && proto.activation().prelu().has_weight()) {
      const v1::Tensor& weight = proto.activation().prelu().weight();
      if (!IsKnownDType(weight.dtype())) {
        return CheckDTypeNumber(weight, place("activation.prelu.weight"));
      }
      item.prelu_weight = TensorViewFromProto(weight);
    }
    items.push_back(item);
  }
  return items;
}

// ---------------------------------------------------------------------------------------
// ListActivations.

std::string DefaultText(const ParamInfo& param) {
  if (param.required) return "";
  return FormatParamValue(param, param.default_value);
}

namespace {

v1::ParameterInfo::Type ParamTypeToProto(ParamType type) {
  switch (type) {
    case ParamType::kReal:
      return v1::ParameterInfo::TYPE_REAL;
    case ParamType::kInteger:
      return v1::ParameterInfo::TYPE_INTEGER;
    case ParamType::kChoice:
      return v1::ParameterInfo::TYPE_CHOICE;
    case ParamType::kTensor:
      return v1::ParameterInfo::TYPE_TENSOR;
  }
  return v1::ParameterInfo::TYPE_UNSPECIFIED;
}

}  // namespace

void ActivationInfoToProto(const ActivationInfo& info, v1::ActivationInfo* proto) {
  proto->Clear();
  proto->set_name(std::string(info.name));
  proto->set_description(std::string(info.description));
  proto->set_formula(std::string(info.formula));
  proto->set_gradient(std::string(info.gradient));
  proto->set_elementwise(info.elementwise);
  proto->set_example(std::string(info.example));
  for (const ParamInfo& param : info.params) {
    v1::ParameterInfo* out = proto->add_parameters();
    out->set_name(std::string(param.name));
    out->set_type(ParamTypeToProto(param.type));
    out->set_required(param.required);
    out->set_default_value(param.required ? 0.0 : param.default_value);
    out->set_default_text(DefaultText(param));
    out->set_valid_range(std::string(param.valid_range));
    for (absl::string_view choice : param.choices) out->add_choices(std::string(choice));
  }
}

}  // namespace wire
}  // namespace actserve
