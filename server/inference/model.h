// The Open Inference Protocol's (KServe v2) models, protocol-neutral: what both of its
// doors (gRPC, server/inference/grpc_service.h; HTTP/REST, server/inference/http_door.h)
// share, so that a request means the same and fails with the same message on either.
//
// Every activation of the catalogue is a model of the same name ("gelu", "leaky_relu",
// ...) with one version, "1". Its inputs are `x` (required), `dy` (optional; absent means
// dy = 1) and, for prelu, `weight` (optional; absent means the `weight` parameter, 0.25
// by default); its outputs are `y`, `dx` and, for prelu, `dweight`. The requested outputs
// choose the pass: `y` alone is a forward pass, gradients alone a backward pass, both one
// fused pass; none requested means every output (the specification's rule). Parameters
// come from the request's `parameters` map under the catalogue's names and types
// (`approximate` a string, `negative_slope` a number, `dim` an integer).
//
// A door parses its wire format into an InferRequest (views of tensor bytes it keeps
// alive), PlanInference validates it and builds the engine's item, the door gives each
// planned output a buffer and RunInference computes into them.
//
//   InferRequest request = ...;                       // from the door's wire format
//   absl::StatusOr<InferencePlan> plan = PlanInference(request, engine);
//   std::vector<absl::Span<char>> buffers = ...;      // plan->outputs[i].bytes each
//   absl::Status status = RunInference(engine, *plan, buffers, &cancelled);
//   // send the outputs whose `requested` is true, in plan->outputs' order
#ifndef ACTSERVE_SERVER_INFERENCE_MODEL_H_
#define ACTSERVE_SERVER_INFERENCE_MODEL_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "src/catalogue.h"
#include "src/compute_item.h"
#include "src/engine.h"

namespace actserve {
namespace server {
namespace inference {

// ServerMetadata's name, and ModelMetadata's platform.
inline constexpr absl::string_view kServerName = "actserve";
inline constexpr absl::string_view kPlatform = "actserve";
// The one version of every model.
inline constexpr absl::string_view kModelVersion = "1";

// The protocol's datatype name of `dtype`: "FP32", "FP64", "FP16", "BF16".
absl::string_view DatatypeName(DType dtype);
// The dtype of a protocol datatype name (exact, upper case); nullopt for every other
// name, including the protocol's integer, BOOL and BYTES types.
std::optional<DType> ParseDatatype(absl::string_view name);

// A model's catalogue entry. NotFound naming the model when `name` is not an activation,
// or the version when `version` is neither empty nor "1".
absl::StatusOr<const ActivationInfo*> FindModel(absl::string_view name,
                                                absl::string_view version);

// One tensor of a model's metadata.
struct TensorMetadata {
  std::string name;
  std::string datatype;        // "FP32": also FP64, FP16 and BF16 are accepted
  std::vector<int64_t> shape;  // [-1]: any shape
};
struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;  // {"1"}
  std::string platform;               // kPlatform
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};
// FindModel's errors, or the metadata of the model.
absl::StatusOr<ModelMetadata> GetModelMetadata(absl::string_view name,
                                               absl::string_view version);

// A request parameter's value: the protocol's InferParameter choices (JSON gives bool,
// int64 or uint64 for integers, double for other numbers, string).
using ParamValue = std::variant<bool, int64_t, uint64_t, double, std::string>;
struct Parameter {
  std::string name;
  ParamValue value;
};

// One input tensor. `data` views its bytes, little-endian, row-major, without padding:
// the door converts typed contents (fp32_contents, JSON numbers) to these bytes first.
// The door keeps the bytes alive until the inference has run.
struct InputTensor {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
  absl::Span<const char> data;
};

struct InferRequest {
  std::string model_name;
  std::string model_version;
  std::string id;
  // The request's `parameters`: the activation's (catalogue names) and the protocol's
  // reserved ones that actserve understands: "timeout" (microseconds, as Triton's, 0
  // meaning none; the call's deadline becomes the earlier of it and the transport's), "priority"
  // (accepted, ignored: every call has the same priority) and, on HTTP/REST only,
  // "binary_data_output" (the door reads it; PlanInference accepts it).
  std::vector<Parameter> parameters;
  std::vector<InputTensor> inputs;
  // The requested outputs' names, in request order; empty: every output of the model.
  std::vector<std::string> outputs;
};

// One result of the planned pass.
enum class OutputKind { kY, kDx, kDWeight };
struct PlannedOutput {
  absl::string_view name;      // "y", "dx", "dweight"
  OutputKind kind;
  DType dtype;                 // the input's
  std::vector<int64_t> shape;  // x's shape; the weight's for dweight
  size_t bytes = 0;            // the buffer RunInference needs
  // False for a result the pass produces but the request did not ask for (dx when only
  // dweight was requested): it needs a buffer but is not sent.
  bool requested = true;
};

// A validated request, ready to compute. Views the request's tensors: the request must
// outlive it.
struct InferencePlan {
  const ActivationInfo* model = nullptr;
  ComputeItem item;
  // The results of the pass: the requested outputs in request order (every output of the
  // model, in metadata order, when none was requested), then any unrequested result the
  // pass needs a buffer for.
  std::vector<PlannedOutput> outputs;
  // Input elements (for metrics and the log line).
  int64_t elements = 0;
  // Memory the engine needs beyond the outputs (ResultSizes::working_bytes).
  size_t working_bytes = 0;
  // From the "timeout" parameter; nullopt when not given.
  std::optional<absl::Duration> timeout;
};

// Validates `request` and plans its pass. NotFound for an unknown model or version;
// InvalidArgument naming the field for everything else: an unknown, repeated or missing
// input; a datatype that is not FP32, FP64, FP16 or BF16, or differs from x's; a shape
// and data size that disagree; an unknown or repeated output; a parameter that is not
// the model's (nor a reserved one), has the wrong type, or is out of range (the text
// form's messages, e.g. "softplus: beta must be nonzero, got 0"); a prelu weight given
// both as input and parameter. ResourceExhausted for the engine's limits (elements,
// dimensions).
absl::StatusOr<InferencePlan> PlanInference(const InferRequest& request, const Engine& engine);

// Computes `plan` into `buffers` (one per plan.outputs entry, each exactly its `bytes`
// long). `cancelled` (may be null) stops the engine between chunks: Cancelled.
absl::Status RunInference(const Engine& engine, const InferencePlan& plan,
                          absl::Span<const absl::Span<char>> buffers,
                          const std::atomic<bool>* cancelled);

}  // namespace inference
}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_INFERENCE_MODEL_H_
