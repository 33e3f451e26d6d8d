// The JSON of the Open Inference Protocol's HTTP/REST routes (KServe v2,
// kserve/open-inference-protocol specification/protocol/inference_rest.md, Apache-2.0)
// with Triton's binary tensor data extension (triton-inference-server/server
// docs/protocol/extension_binary_data.md): the inference request in, the responses out.
// No HTTP here: server/inference/http_door.cc moves the bytes.
//
// The request is read by a SAX parser (nlohmann-json's), so that a `data` array of
// millions of numbers goes straight into typed little-endian values and never becomes a
// tree of millions of JSON nodes; nested `data` arrays are flattened (row-major, as the
// specification says). Memory and work are bounded by the request's bytes and by
// RestJsonLimits: nesting depth, dimensions, tensors, parameters, string length.
//
//   RestInferRequest parsed;
//   absl::Status status = ParseInferRequest(json, binary_tail, limits, allocate, &parsed);
//   ... PlanInference(parsed.request, engine) ...
//   std::string header;
//   status = WriteInferResponse(info, outputs, max_bytes, &header);
//
// Numbers: a JSON number is read as the C library reads it (correctly rounded to double)
// and that double rounded to nearest-even to the tensor's type, as Triton and numpy read
// JSON numbers; a value printed as the shortest text of its type comes back exact. FP16
// and BF16 too: actserve accepts and answers half-precision tensors as JSON numbers,
// where Triton asks for binary data; a client that prefers binary still has it. An
// output is written as the shortest decimal that reads back, through double, as exactly
// the same value of its type (FP32 and FP64: the shortest of all; FP16 and BF16: the
// shortest correctly rounded one), so values round-trip bit for bit. JSON has no NaN or
// infinity: an output holding one is refused with a message that asks for binary data.
//
// Thread-safe: every function works on its arguments only.
#ifndef ACTSERVE_SERVER_INFERENCE_REST_JSON_H_
#define ACTSERVE_SERVER_INFERENCE_REST_JSON_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "actserve/types.h"
#include "server/inference/model.h"

namespace actserve {
namespace server {
namespace inference {

// What one request may hold. Every limit bounds the parser's memory and time by the
// request's own bytes, whatever the request says.
struct RestJsonLimits {
  // Most dimensions of a shape; more is ResourceExhausted, found while parsing (as the
  // engine's max_rank). 0: unlimited (nesting is still bounded by max_depth).
  // Default 32 (--max_rank).
  int max_rank = 32;
  // Most levels of nested arrays and objects in the whole document. A request needs 4
  // (object, inputs, input, parameters) plus one per nested `data` level. Default 40.
  int max_depth = 40;
  // Most entries in `inputs` and in `outputs`: a model has at most 3 of each, so more is
  // a broken client. Default 16.
  int max_tensors = 16;
  // Most entries in one `parameters` object. Default 64.
  int max_parameters = 64;
  // Longest string of the document (id, names, datatype, parameter values, keys, and
  // the strings of skipped fields), in bytes as sent. Default 4096.
  size_t max_string_bytes = 4096;
};

// Gives `bytes` of memory for one input's values converted from JSON numbers (and, for
// data read before its input's shape and datatype, chunks of doubles that hold the values
// until then: at most 4 bytes per byte of JSON); the memory must stay valid as long as
// the parsed request is used. The door hands out pooled
// buffers (counted against the tensor memory limit); an error is returned as is.
using TensorAllocator = absl::FunctionRef<absl::StatusOr<absl::Span<char>>(size_t bytes)>;

// A parsed inference request.
struct RestInferRequest {
  // model_name and model_version are left empty: they come from the URL. Tensors view
  // either the binary data after the JSON header or memory from the TensorAllocator.
  InferRequest request;
  // Per entry of request.outputs: the output's "binary_data" parameter, when given.
  std::vector<std::optional<bool>> output_binary;
  // The request's "binary_data_output" parameter (false when absent): every output is
  // sent as binary data unless its own "binary_data" says otherwise.
  bool binary_data_output = false;
};

// Parses the inference request `json` (the JSON header: the whole body, or its first
// Inference-Header-Content-Length bytes) and `binary` (the bytes after the header; empty
// without the extension). Inputs with the parameter "binary_data_size" take the next that
// many bytes of `binary`, in input order; together they must use all of it. Inputs with
// "data" are converted to their datatype through `allocate`.
//
// InvalidArgument, naming the place (e.g. "inputs[1].shape[2]"), for malformed JSON
// (with its byte offset), a wrong type of field, a repeated field, a negative or
// non-integer dimension, a datatype that is not FP32, FP64, FP16 or BF16 for JSON data,
// a data value that is not a number, a data count that differs from the shape, an input
// with both or neither of data and binary_data_size, binary sizes that do not add up,
// an unknown input or output parameter, or a "binary_data"/"binary_data_output" that is
// not a boolean; ResourceExhausted for more dimensions than limits.max_rank, more nesting
// than limits.max_depth, more tensors or parameters, or a longer string than the limits
// allow. Unknown fields outside `parameters` are skipped (Triton's clients send
// "model_name"). Parameters are kept as given, for PlanInference to check.
absl::Status ParseInferRequest(absl::string_view json, absl::string_view binary,
                               const RestJsonLimits& limits, TensorAllocator allocate,
                               RestInferRequest* parsed);

// One output of a response.
struct RestOutput {
  absl::string_view name;
  DType dtype = DType::kFloat32;
  absl::Span<const int64_t> shape;
  absl::Span<const char> data;  // little-endian values
  bool binary = false;          // sent after the header; the header gives its size
};

// The parts of an inference response besides its outputs.
struct RestResponseInfo {
  absl::string_view model_name;
  absl::string_view model_version;
  absl::string_view id;  // echoed when not empty
};

// Writes the inference response's JSON header into `json` (replacing its contents):
// model_name, model_version, id, and per output its name, datatype, shape and either
// "data" (a flat array) or "parameters": {"binary_data_size": N}. The caller sends the
// binary outputs' bytes after it, in the same order. ResourceExhausted when the header
// plus the binary outputs would pass `max_body_bytes` (0: unlimited), found while
// writing; InvalidArgument, naming the output and element, for a NaN or infinity in an
// output written as JSON.
absl::Status WriteInferResponse(const RestResponseInfo& info, absl::Span<const RestOutput> outputs,
                                size_t max_body_bytes, std::string* json);

// The server metadata object: {"name": ..., "version": ..., "extensions": [...]}.
std::string ServerMetadataJson(absl::string_view name, absl::string_view version,
                               absl::Span<const absl::string_view> extensions);

// The model metadata object of the specification.
std::string ModelMetadataJson(const ModelMetadata& metadata);

// {"error": message}, the message cut at kMaxErrorMessageBytes (at a UTF-8 character
// boundary, ending in "...") as the gRPC doors cut theirs, and made valid UTF-8.
inline constexpr size_t kMaxErrorMessageBytes = 1024;
std::string ErrorJson(absl::string_view message);

// A shortest decimal text of `bits` (a value of `dtype`: FP32 and FP64 as their IEEE
// bits, FP16 and BF16 in the low 16 bits) that reads back (strtod, then rounding to
// `dtype` to nearest-even) as exactly `bits`, as the file's comment says; nullopt for NaN
// and infinities. Exposed for the tests.
std::optional<std::string> FormatJsonNumber(DType dtype, uint64_t bits);

}  // namespace inference
}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_INFERENCE_REST_JSON_H_
