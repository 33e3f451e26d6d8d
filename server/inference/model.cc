#include "server/inference/model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "src/activation_spec.h"
#include "src/dtype.h"

namespace actserve {
namespace server {
namespace inference {
namespace {

constexpr absl::string_view kX = "x";
constexpr absl::string_view kDy = "dy";
constexpr absl::string_view kWeight = "weight";
constexpr absl::string_view kY = "y";
constexpr absl::string_view kDx = "dx";
constexpr absl::string_view kDWeight = "dweight";

// Request parameters of the protocol (Triton's names) that are not an activation's.
constexpr absl::string_view kTimeoutParam = "timeout";
constexpr absl::string_view kPriorityParam = "priority";
constexpr absl::string_view kBinaryDataOutputParam = "binary_data_output";

bool IsPrelu(const ActivationInfo& model) { return model.kind == ActivationKind::kPrelu; }

std::vector<absl::string_view> InputNames(const ActivationInfo& model) {
  if (IsPrelu(model)) return {kX, kDy, kWeight};
  return {kX, kDy};
}

std::vector<absl::string_view> OutputNames(const ActivationInfo& model) {
  if (IsPrelu(model)) return {kY, kDx, kDWeight};
  return {kY, kDx};
}

std::string Quote(absl::string_view text) { return absl::StrCat("'", text, "'"); }

// The name of a parameter value's type, for messages.
absl::string_view TypeName(const ParamValue& value) {
  switch (value.index()) {
    case 0: return "a bool";
    case 1: return "an int64";
    case 2: return "a uint64";
    case 3: return "a double";
    default: return "a string";
  }
}

// A numeric parameter value as a double (exact for every int32, which is all an integer
// parameter may hold); nullopt for a bool or a string.
std::optional<double> NumericValue(const ParamValue& value) {
  if (const int64_t* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  if (const uint64_t* u = std::get_if<uint64_t>(&value)) return static_cast<double>(*u);
  if (const double* d = std::get_if<double>(&value)) return *d;
  return std::nullopt;
}

// The activation's value of `param` from a request parameter, in the spec's encoding
// (choices as their index), with the text form's messages.
absl::StatusOr<double> ActivationParamValue(const ActivationInfo& model,
                                            const ParamInfo& param, const ParamValue& value) {
  const auto wrong_type = [&](absl::string_view expected) {
    return absl::InvalidArgumentError(absl::StrCat("parameters.", param.name, ": ",
                                                   model.name, "'s ", param.name, " is ",
                                                   expected, ", got ", TypeName(value)));
  };
  if (param.type == ParamType::kChoice) {
    const std::string* text = std::get_if<std::string>(&value);
    if (text == nullptr) {
      return wrong_type(absl::StrCat("a string (", absl::StrJoin(param.choices, " or "), ")"));
    }
    for (size_t c = 0; c < param.choices.size(); ++c) {
      if (param.choices[c] == *text) return static_cast<double>(c);
    }
    // The text form's message.
    return absl::InvalidArgumentError(absl::StrCat(model.name, ": ", param.name,
                                                   " must be one of ",
                                                   absl::StrJoin(param.choices, ", "),
                                                   ", got ", Quote(*text)));
  }
  std::optional<double> number = NumericValue(value);
  if (!number.has_value()) {
    return wrong_type(param.type == ParamType::kInteger ? "an integer" : "a number");
  }
  return *number;
}

// The engine names an item's fields ("items[0].grad_output"); a protocol caller knows
// them as inputs and parameters.
std::string InProtocolTerms(absl::string_view message, int x_index, int dy_index,
                            int weight_index) {
  const auto input = [](absl::string_view name, int index) {
    return absl::StrCat("inputs[", index, "] (", name, ")");
  };
  return absl::StrReplaceAll(
      message, {{"items[0].activation.prelu.weight", input(kWeight, weight_index)},
                {"items[0].grad_output", input(kDy, dy_index)},
                {"items[0].input", input(kX, x_index)},
                {"items[0].activation", "parameters"},
                {"the batch has more than", "the request has more than"},
                {" by items[0];", ";"}});
}

}  // namespace

absl::string_view DatatypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "FP32";
    case DType::kFloat64: return "FP64";
    case DType::kFloat16: return "FP16";
    case DType::kBFloat16: return "BF16";
    case DType::kUnspecified: break;
  }
  return "";
}

std::optional<DType> ParseDatatype(absl::string_view name) {
  for (DType dtype : AllDTypes()) {
    if (DatatypeName(dtype) == name) return dtype;
  }
  return std::nullopt;
}

absl::StatusOr<const ActivationInfo*> FindModel(absl::string_view name,
                                                absl::string_view version) {
  const ActivationInfo* model = FindActivation(name);
  if (model == nullptr) {
    std::vector<absl::string_view> names;
    for (const ActivationInfo& info : Catalogue()) names.push_back(info.name);
    return absl::NotFoundError(absl::StrCat("model ", Quote(name),
                                            " is not served here; the models are the "
                                            "activations: ",
                                            absl::StrJoin(names, ", ")));
  }
  if (!version.empty() && version != kModelVersion) {
    return absl::NotFoundError(absl::StrCat("model ", Quote(name), " has no version ",
                                            Quote(version), "; its only version is ",
                                            Quote(kModelVersion)));
  }
  return model;
}

absl::StatusOr<ModelMetadata> GetModelMetadata(absl::string_view name,
                                               absl::string_view version) {
  absl::StatusOr<const ActivationInfo*> model = FindModel(name, version);
  if (!model.ok()) return model.status();
  ModelMetadata metadata;
  metadata.name = std::string((*model)->name);
  metadata.versions = {std::string(kModelVersion)};
  metadata.platform = std::string(kPlatform);
  // One datatype per tensor in the protocol: FP32 stands for the four accepted; every
  // tensor of a call has x's datatype. [-1]: any rank and size.
  const std::string datatype(DatatypeName(DType::kFloat32));
  for (absl::string_view input : InputNames(**model)) {
    metadata.inputs.push_back({std::string(input), datatype, {-1}});
  }
  for (absl::string_view output : OutputNames(**model)) {
    metadata.outputs.push_back({std::string(output), datatype, {-1}});
  }
  return metadata;
}

absl::StatusOr<InferencePlan> PlanInference(const InferRequest& request,
                                            const Engine& engine) {
  absl::StatusOr<const ActivationInfo*> found =
      FindModel(request.model_name, request.model_version);
  if (!found.ok()) return found.status();
  const ActivationInfo& model = **found;
  InferencePlan plan;
  plan.model = &model;

  // Inputs: each known name once, x required, every datatype x's.
  const std::vector<absl::string_view> input_names = InputNames(model);
  int x_index = -1, dy_index = -1, weight_index = -1;
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const InputTensor& input = request.inputs[i];
    const std::string place = absl::StrCat("inputs[", i, "]");
    int* slot = input.name == kX        ? &x_index
                : input.name == kDy     ? &dy_index
                : input.name == kWeight && IsPrelu(model) ? &weight_index
                                                          : nullptr;
    if (slot == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          place, ".name: ", Quote(input.name), " is not an input of model ",
          Quote(model.name), " (inputs: ", absl::StrJoin(input_names, ", "), ")"));
    }
    if (*slot >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(place, ".name: ", Quote(input.name),
                                                     " is given twice (also inputs[",
                                                     *slot, "])"));
    }
    *slot = static_cast<int>(i);
    if (!ParseDatatype(input.datatype).has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          place, ".datatype: ", Quote(input.datatype),
          " is not supported; actserve computes FP32, FP64, FP16 and BF16"));
    }
  }
  if (x_index < 0) {
    return absl::InvalidArgumentError(absl::StrCat("inputs: model ", Quote(model.name),
                                                   " needs the input 'x'"));
  }
  const InputTensor& x = request.inputs[x_index];
  const DType dtype = *ParseDatatype(x.datatype);
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const InputTensor& input = request.inputs[i];
    if (input.datatype != x.datatype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inputs[", i, "].datatype: ", Quote(input.name), " is ", input.datatype,
          " but 'x' is ", x.datatype, "; every tensor of a call has x's datatype"));
    }
    // The engine checks this too; checked here to say it in the protocol's words.
    const int max_rank = engine.options().max_rank;
    if (max_rank > 0 && input.shape.size() > static_cast<size_t>(max_rank)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "inputs[", i, "].shape: ", input.shape.size(), " dimensions, more than ",
          max_rank, " (the limit, --max_rank)"));
    }
    absl::StatusOr<int64_t> elements = NumElements(input.shape);
    if (!elements.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("inputs[", i, "].shape: ", elements.status().message()));
    }
    const uint64_t expected = static_cast<uint64_t>(*elements) * DTypeSize(dtype);
    if (input.data.size() != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inputs[", i, "] (", input.name, "): ", input.data.size(),
          " bytes of contents, but shape ", ShapeToString(input.shape), " ", input.datatype,
          " needs ", expected));
    }
  }

  // Parameters: the activation's under the catalogue's names, and the reserved ones.
  std::vector<NamedParam> given;
  std::optional<double> scalar_weight;
  for (const Parameter& parameter : request.parameters) {
    if (parameter.name == kTimeoutParam) {
      std::optional<double> micros = NumericValue(parameter.value);
      if (!micros.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "parameters.timeout: expected a number of microseconds, got ",
            TypeName(parameter.value)));
      }
      if (!(*micros >= 0) || std::isinf(*micros)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "parameters.timeout: expected a finite number of microseconds >= 0, got ",
            *micros));
      }
      // As Triton's: 0 means no timeout.
      if (*micros > 0) plan.timeout = absl::Microseconds(*micros);
      continue;
    }
    if (parameter.name == kPriorityParam || parameter.name == kBinaryDataOutputParam) {
      continue;
    }
    const int index = FindParam(model, parameter.name);
    if (index < 0) {
      std::vector<absl::string_view> names;
      for (const ParamInfo& param : model.params) names.push_back(param.name);
      return absl::InvalidArgumentError(absl::StrCat(
          "parameters.", parameter.name, ": not a parameter of model ", Quote(model.name),
          names.empty() ? " (it has none)" : absl::StrCat(" (its parameters: ",
                                                          absl::StrJoin(names, ", "), ")")));
    }
    const ParamInfo& param = model.params[index];
    absl::StatusOr<double> value = ActivationParamValue(model, param, parameter.value);
    if (!value.ok()) return value.status();
    if (param.type == ParamType::kTensor) scalar_weight = *value;
    given.push_back({param.name, *value});
  }
  if (scalar_weight.has_value() && weight_index >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameters.weight: given together with inputs[", weight_index,
        "] (weight); send the weight one way"));
  }
  absl::StatusOr<ActivationSpec> spec = MakeActivationSpec(model.kind, given);
  if (!spec.ok()) return spec.status();

  // Outputs: each known name once; none requested means all.
  const std::vector<absl::string_view> output_names = OutputNames(model);
  std::vector<absl::string_view> requested;
  for (size_t i = 0; i < request.outputs.size(); ++i) {
    const std::string& name = request.outputs[i];
    auto known = std::find(output_names.begin(), output_names.end(), name);
    if (known == output_names.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "outputs[", i, "].name: ", Quote(name), " is not an output of model ",
          Quote(model.name), " (outputs: ", absl::StrJoin(output_names, ", "), ")"));
    }
    if (std::find(requested.begin(), requested.end(), *known) != requested.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("outputs[", i, "].name: ", Quote(name), " is requested twice"));
    }
    requested.push_back(*known);
  }
  if (requested.empty()) requested = output_names;
  const auto wants = [&](absl::string_view name) {
    return std::find(requested.begin(), requested.end(), name) != requested.end();
  };
  const bool forward = wants(kY);
  const bool gradient = wants(kDx) || wants(kDWeight);
  ComputeItem& item = plan.item;
  item.input = {dtype, x.shape, x.data};
  item.activation = *spec;
  item.mode = forward && gradient ? Mode::kForwardBackward
              : forward           ? Mode::kForward
                                  : Mode::kBackward;
  if (dy_index >= 0) {
    const InputTensor& dy = request.inputs[dy_index];
    // Checked here, not only by the engine: a forward pass ignores dy, but a dy that
    // cannot be x's is a broken request whichever outputs it asks for.
    if (dy.shape != x.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inputs[", dy_index, "] (dy): shape ", ShapeToString(dy.shape),
          " does not match the input's ", ShapeToString(x.shape)));
    }
    item.grad_output = ConstTensorView{dtype, dy.shape, dy.data};
  }
  if (weight_index >= 0) {
    const InputTensor& weight = request.inputs[weight_index];
    item.prelu_weight = ConstTensorView{dtype, weight.shape, weight.data};
  }

  absl::StatusOr<std::vector<ResultSizes>> sizes = engine.Plan({&item, 1});
  if (!sizes.ok()) {
    return absl::Status(sizes.status().code(),
                        InProtocolTerms(sizes.status().message(), x_index, dy_index,
                                        weight_index));
  }
  const ResultSizes& result = (*sizes)[0];
  plan.elements = result.elements;
  plan.working_bytes = result.working_bytes;
  std::vector<int64_t> weight_shape = {result.grad_weight_elements};
  if (weight_index >= 0) weight_shape = request.inputs[weight_index].shape;
  const auto planned = [&](absl::string_view name) {
    PlannedOutput output;
    output.name = name;
    output.dtype = dtype;
    output.requested = wants(name);
    if (name == kY) {
      output.kind = OutputKind::kY;
      output.shape = x.shape;
      output.bytes = result.output_bytes;
    } else if (name == kDx) {
      output.kind = OutputKind::kDx;
      output.shape = x.shape;
      output.bytes = result.grad_input_bytes;
    } else {
      output.kind = OutputKind::kDWeight;
      output.shape = weight_shape;
      output.bytes = result.grad_weight_bytes;
    }
    return output;
  };
  for (absl::string_view name : requested) plan.outputs.push_back(planned(name));
  // A backward pass computes dx and, for prelu, dweight, whichever was asked for.
  if (gradient) {
    for (absl::string_view name : {kDx, kDWeight}) {
      if (name == kDWeight && !IsPrelu(model)) continue;
      if (!wants(name)) plan.outputs.push_back(planned(name));
    }
  }
  return plan;
}

absl::Status RunInference(const Engine& engine, const InferencePlan& plan,
                          absl::Span<const absl::Span<char>> buffers,
                          const std::atomic<bool>* cancelled) {
  if (buffers.size() != plan.outputs.size()) {
    return absl::InternalError(absl::StrCat("RunInference: ", buffers.size(),
                                            " buffers for ", plan.outputs.size(),
                                            " outputs"));
  }
  ItemBuffers item_buffers;
  for (size_t i = 0; i < buffers.size(); ++i) {
    switch (plan.outputs[i].kind) {
      case OutputKind::kY: item_buffers.output = buffers[i]; break;
      case OutputKind::kDx: item_buffers.grad_input = buffers[i]; break;
      case OutputKind::kDWeight: item_buffers.grad_weight = buffers[i]; break;
    }
  }
  return engine.Compute({&plan.item, 1}, {&item_buffers, 1}, cancelled);
}

}  // namespace inference
}  // namespace server
}  // namespace actserve
