#include "server/inference/grpc_service.h"

#include <grpcpp/alarm.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "proto/grpc_status.h"
#include "server/activation_service.h"
#include "server/inference/model.h"
#include "src/dtype.h"

namespace actserve {
namespace server {
namespace inference {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::internal::WireFormatLite;
namespace pb = ::inference;

// ModelInferRequest's field numbers (the specification's).
constexpr int kRequestParameters = 4;
constexpr int kRequestInputs = 5;
constexpr int kRequestOutputs = 6;
constexpr int kRequestRawInputContents = 7;
constexpr int kInputShape = 3;
constexpr int kInputParameters = 4;
constexpr int kInputContents = 5;
constexpr int kOutputParameters = 2;
constexpr int kContentsFp32 = 6;
constexpr int kContentsFp64 = 7;
// ModelInferResponse.raw_output_contents, length-delimited: (6 << 3) | 2.
constexpr uint8_t kRawOutputContentsTag = 0x32;

absl::Status Malformed() {
  return absl::InvalidArgumentError(
      "malformed ModelInferRequest: not a valid protobuf message");
}

using WireType = WireFormatLite::WireType;
constexpr WireType kVarint = WireFormatLite::WIRETYPE_VARINT;
constexpr WireType kFixed64 = WireFormatLite::WIRETYPE_FIXED64;
constexpr WireType kFixed32 = WireFormatLite::WIRETYPE_FIXED32;
constexpr WireType kLengthDelimited = WireFormatLite::WIRETYPE_LENGTH_DELIMITED;

// InferParameter's fields and their wire types.
bool KnownParameterField(int number, WireType type) {
  switch (number) {
    case 1:  // bool_param
    case 2:  // int64_param
    case 5:  // uint64_param
      return type == kVarint;
    case 3:  // string_param
      return type == kLengthDelimited;
    case 4:  // double_param
      return type == kFixed64;
    default:
      return false;
  }
}

// The scan's cursor and what it has counted across the whole request.
struct Scan {
  CodedInputStream& in;
  int64_t total;  // the message's size
  int max_rank;
  int unknown_fields = 0;
};

// Reads a length-delimited field's body with `body`, which must read up to its end.
// `scan.total` is checked because the stream reports its own end as a message's
// legitimate end, so a body cut short would otherwise pass.
template <typename Body>
absl::Status ScanMessage(Scan& scan, Body body) {
  CodedInputStream& in = scan.in;
  uint32_t length = 0;
  if (!in.ReadVarint32(&length) || length > scan.total - in.CurrentPosition()) {
    return Malformed();
  }
  const CodedInputStream::Limit limit = in.PushLimit(static_cast<int>(length));
  absl::Status status = body();
  if (!status.ok()) return status;
  in.PopLimit(limit);
  return absl::OkStatus();
}

// Reads the fields up to the current limit (or the end), calling `field(number, tag)`
// for each; `field` returns false for a field it does not read, which is then skipped.
// A skipped field that `known(number, wire type)` does not name is one that protobuf
// keeps as an unknown field, an object of its own: a few bytes apiece would cost far
// more once parsed, so a request may hold only kMaxUnknownFields of them.
template <typename Known, typename Field>
absl::Status ScanFields(Scan& scan, Known known, Field field) {
  CodedInputStream& in = scan.in;
  while (uint32_t tag = in.ReadTag()) {
    const int number = static_cast<int>(tag >> 3);
    absl::StatusOr<bool> read = field(number, tag);
    if (!read.ok()) return read.status();
    if (*read) continue;
    if (!known(number, WireFormatLite::GetTagWireType(tag)) &&
        ++scan.unknown_fields > kMaxUnknownFields) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ModelInferRequest: more than ", kMaxUnknownFields,
          " fields that the specification does not define (or of another wire type)"));
    }
    if (!WireFormatLite::SkipField(&in, tag)) return Malformed();
  }
  if (!in.ConsumedEntireMessage()) return Malformed();
  return absl::OkStatus();
}

bool IsLengthDelimited(uint32_t tag) {
  return WireFormatLite::GetTagWireType(tag) == kLengthDelimited;
}

absl::Status CountOne(int* count, int limit, absl::string_view what) {
  if (++*count > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ModelInferRequest: more than ", limit, " ", what,
        "; no model takes more (x, dy and prelu's weight)"));
  }
  return absl::OkStatus();
}

// One entry of a `parameters` map (key = 1, value = 2, an InferParameter), counted.
absl::Status ScanParameterEntry(Scan& scan, int* count, absl::string_view where) {
  if (++*count > kMaxInferParameters) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": more than ",
                                                   kMaxInferParameters, " parameters"));
  }
  return ScanMessage(scan, [&] {
    return ScanFields(
        scan, [](int number, WireType type) { return number <= 2 && type == kLengthDelimited; },
        [&](int number, uint32_t tag) -> absl::StatusOr<bool> {
          if (number != 2 || !IsLengthDelimited(tag)) return false;
          absl::Status value = ScanMessage(scan, [&] {
            return ScanFields(scan, KnownParameterField,
                              [](int, uint32_t) -> absl::StatusOr<bool> { return false; });
          });
          if (!value.ok()) return value;
          return true;
        });
  });
}

absl::Status ScanInput(Scan& scan, int index) {
  CodedInputStream& in = scan.in;
  int64_t dimensions = 0;
  int parameters = 0;
  const std::string place = absl::StrCat("inputs[", index, "]");
  const auto count_dimension = [&]() -> absl::Status {
    if (scan.max_rank > 0 && ++dimensions > scan.max_rank) {
      return absl::ResourceExhaustedError(absl::StrCat(
          place, ".shape: more than ", scan.max_rank, " dimensions (the limit, --max_rank)"));
    }
    return absl::OkStatus();
  };
  const auto known = [](int number, WireType type) {
    if (number == kInputShape) return type == kLengthDelimited || type == kVarint;
    return number >= 1 && number <= 5 && type == kLengthDelimited;
  };
  return ScanFields(scan, known, [&](int number, uint32_t tag) -> absl::StatusOr<bool> {
    if (number == kInputShape && IsLengthDelimited(tag)) {  // packed
      absl::Status status = ScanMessage(scan, [&]() -> absl::Status {
        uint64_t value = 0;
        while (in.BytesUntilLimit() > 0) {
          if (!in.ReadVarint64(&value)) return Malformed();
          if (absl::Status counted = count_dimension(); !counted.ok()) return counted;
        }
        return absl::OkStatus();
      });
      if (!status.ok()) return status;
      return true;
    }
    if (number == kInputShape && WireFormatLite::GetTagWireType(tag) == kVarint) {
      // One unpacked entry; SkipField reads it.
      if (absl::Status counted = count_dimension(); !counted.ok()) return counted;
      return false;
    }
    if (number == kInputParameters && IsLengthDelimited(tag)) {
      absl::Status status =
          ScanParameterEntry(scan, &parameters, absl::StrCat(place, ".parameters"));
      if (!status.ok()) return status;
      return true;
    }
    if (number == kInputContents && IsLengthDelimited(tag)) {
      const auto known_contents = [](int content, WireType type) {
        return (content == kContentsFp32 && (type == kLengthDelimited || type == kFixed32)) ||
               (content == kContentsFp64 && (type == kLengthDelimited || type == kFixed64));
      };
      absl::Status status = ScanMessage(scan, [&] {
        return ScanFields(scan, known_contents,
                          [&](int content, uint32_t) -> absl::StatusOr<bool> {
          if (content < 1 || content > 8 || content == kContentsFp32 ||
              content == kContentsFp64) {
            return false;
          }
          return absl::InvalidArgumentError(absl::StrCat(
              place, ".contents: field ", content,
              " holds integer, bool or bytes values; actserve computes FP32, FP64, FP16 "
              "and BF16 (fp32_contents, fp64_contents or raw_input_contents)"));
        });
      });
      if (!status.ok()) return status;
      return true;
    }
    return false;
  });
}

absl::Status ScanOutput(Scan& scan, int index) {
  int parameters = 0;
  return ScanFields(
      scan, [](int number, WireType type) { return number >= 1 && number <= 2 && type == kLengthDelimited; },
      [&](int number, uint32_t tag) -> absl::StatusOr<bool> {
        if (number != kOutputParameters || !IsLengthDelimited(tag)) return false;
        absl::Status status = ScanParameterEntry(
            scan, &parameters, absl::StrCat("outputs[", index, "].parameters"));
        if (!status.ok()) return status;
        return true;
      });
}

// A parameter's value in the models' terms; InvalidArgument when it holds none.
absl::StatusOr<ParamValue> ToParamValue(const pb::InferParameter& parameter,
                                        absl::string_view place) {
  switch (parameter.parameter_choice_case()) {
    case pb::InferParameter::kBoolParam: return ParamValue(parameter.bool_param());
    case pb::InferParameter::kInt64Param: return ParamValue(parameter.int64_param());
    case pb::InferParameter::kStringParam: return ParamValue(parameter.string_param());
    case pb::InferParameter::kDoubleParam: return ParamValue(parameter.double_param());
    case pb::InferParameter::kUint64Param: return ParamValue(parameter.uint64_param());
    case pb::InferParameter::PARAMETER_CHOICE_NOT_SET: break;
  }
  return absl::InvalidArgumentError(absl::StrCat(place, ": the parameter holds no value"));
}

template <typename T>
absl::Span<const char> BytesOf(const google::protobuf::RepeatedField<T>& values) {
  // Little-endian floats in memory are the protocol's raw layout: read in place.
  return {reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)};
}

// The input's bytes from its typed contents (none when raw contents are used).
absl::StatusOr<absl::Span<const char>> TypedContents(const pb::ModelInferRequest::InferInputTensor& input,
                                                     size_t index) {
  const pb::InferTensorContents& contents = input.contents();
  const std::string place = absl::StrCat("inputs[", index, "].contents");
  const std::optional<DType> dtype = ParseDatatype(input.datatype());
  if (!dtype.has_value()) return absl::Span<const char>();  // PlanInference says why
  switch (*dtype) {
    case DType::kFloat32:
      if (contents.fp64_contents_size() > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(place, ": an FP32 tensor's elements go in fp32_contents, not fp64_contents"));
      }
      return BytesOf(contents.fp32_contents());
    case DType::kFloat64:
      if (contents.fp32_contents_size() > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(place, ": an FP64 tensor's elements go in fp64_contents, not fp32_contents"));
      }
      return BytesOf(contents.fp64_contents());
    default:
      if (input.has_contents()) {
        return absl::InvalidArgumentError(absl::StrCat(
            place, ": ", input.datatype(),
            " tensors travel in raw_input_contents (the protocol has no 16-bit contents field)"));
      }
      return absl::Span<const char>();
  }
}

grpc::ServerUnaryReactor* FinishWith(grpc::CallbackServerContext* context,
                                     const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(wire::ToGrpcStatus(status));
  return reactor;
}

}  // namespace

absl::Status ScanModelInferRequest(const grpc::ByteBuffer& request, int max_rank) {
  grpc::ByteBuffer copy(request);  // takes references to the slices, not their bytes
  grpc::ProtoBufferReader reader(&copy);
  if (!reader.status().ok()) return Malformed();
  CodedInputStream in(&reader);
  Scan scan{in, static_cast<int64_t>(request.Length()), max_rank};
  int inputs = 0, outputs = 0, raw_contents = 0, parameters = 0;
  const auto known = [](int number, WireType type) {
    return number >= 1 && number <= 7 && type == kLengthDelimited;
  };
  return ScanFields(scan, known, [&](int number, uint32_t tag) -> absl::StatusOr<bool> {
    if (!IsLengthDelimited(tag)) return false;
    switch (number) {
      case kRequestParameters: {
        absl::Status status = ScanParameterEntry(scan, &parameters, "parameters");
        if (!status.ok()) return status;
        return true;
      }
      case kRequestInputs: {
        if (absl::Status counted = CountOne(&inputs, kMaxInferTensors, "inputs");
            !counted.ok()) {
          return counted;
        }
        absl::Status status = ScanMessage(scan, [&] { return ScanInput(scan, inputs - 1); });
        if (!status.ok()) return status;
        return true;
      }
      case kRequestOutputs: {
        if (absl::Status counted = CountOne(&outputs, kMaxInferTensors, "outputs");
            !counted.ok()) {
          return counted;
        }
        absl::Status status = ScanMessage(scan, [&] { return ScanOutput(scan, outputs - 1); });
        if (!status.ok()) return status;
        return true;
      }
      case kRequestRawInputContents: {
        absl::Status counted =
            CountOne(&raw_contents, kMaxInferTensors, "raw_input_contents entries");
        if (!counted.ok()) return counted;
        return false;
      }
      default:
        return false;
    }
  });
}

InferenceServiceImpl::InferenceServiceImpl(const Engine* engine, ThreadPool* pool,
                                           std::shared_ptr<BufferPool> buffers,
                                           const ServerOptions& options, CallGate* gate,
                                           std::function<bool()> ready)
    : engine_(*engine),
      pool_(*pool),
      buffers_(std::move(buffers)),
      options_(options),
      gate_(*gate),
      ready_(std::move(ready)) {}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerLive(
    grpc::CallbackServerContext* context, const pb::ServerLiveRequest*,
    pb::ServerLiveResponse* response) {
  response->set_live(true);
  return FinishWith(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerReady(
    grpc::CallbackServerContext* context, const pb::ServerReadyRequest*,
    pb::ServerReadyResponse* response) {
  response->set_ready(ready_() && !gate_.draining());
  return FinishWith(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelReady(
    grpc::CallbackServerContext* context, const pb::ModelReadyRequest* request,
    pb::ModelReadyResponse* response) {
  absl::StatusOr<const ActivationInfo*> model = FindModel(request->name(), request->version());
  if (model.ok()) response->set_ready(ready_() && !gate_.draining());
  return FinishWith(context, model.status());
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerMetadata(
    grpc::CallbackServerContext* context, const pb::ServerMetadataRequest*,
    pb::ServerMetadataResponse* response) {
  const absl::Time start = absl::Now();
  absl::Status status = AdmitGrpcCall(gate_, *context, CallKind::kUncounted);
  if (status.ok()) {
    response->set_name(std::string(kServerName));
    response->set_version(ACTSERVE_VERSION);
    // binary_tensor_data: the REST door's binary tensors; parameters: request and
    // output parameters (the activations' parameters travel there).
    response->add_extensions("binary_tensor_data");
    response->add_extensions("parameters");
  }
  gate_.Record("ServerMetadata", context->peer(), start, CallStats{}, status);
  return FinishWith(context, status);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelMetadata(
    grpc::CallbackServerContext* context, const pb::ModelMetadataRequest* request,
    pb::ModelMetadataResponse* response) {
  const absl::Time start = absl::Now();
  absl::Status status = AdmitGrpcCall(gate_, *context, CallKind::kUncounted);
  if (status.ok()) {
    absl::StatusOr<inference::ModelMetadata> metadata =
        GetModelMetadata(request->name(), request->version());
    if (metadata.ok()) {
      response->set_name(metadata->name);
      for (const std::string& version : metadata->versions) response->add_versions(version);
      response->set_platform(metadata->platform);
      const auto add = [](const TensorMetadata& tensor,
                          pb::ModelMetadataResponse::TensorMetadata* out) {
        out->set_name(tensor.name);
        out->set_datatype(tensor.datatype);
        for (int64_t dim : tensor.shape) out->add_shape(dim);
      };
      for (const TensorMetadata& input : metadata->inputs) add(input, response->add_inputs());
      for (const TensorMetadata& output : metadata->outputs) {
        add(output, response->add_outputs());
      }
    } else {
      status = metadata.status();
    }
  }
  gate_.Record("ModelMetadata", context->peer(), start, CallStats{}, status);
  return FinishWith(context, status);
}

absl::StatusOr<std::unique_ptr<InferenceServiceImpl::Call>> InferenceServiceImpl::Prepare(
    const grpc::ByteBuffer& request, CallStats* stats) {
  stats->batches = 1;
  stats->received_bytes += request.Length();
  if (absl::Status scanned = ScanModelInferRequest(request, options_.max_rank);
      !scanned.ok()) {
    return scanned;
  }
  auto call = std::make_unique<Call>();
  // Protobuf's parse copies the tensors out of the received slices: that copy counts
  // against --max_tensor_memory_bytes before it is made, as actserve.v1's decoder's does.
  absl::StatusOr<Reservation> received = buffers_->Reserve(request.Length());
  if (!received.ok()) return received.status();
  call->received = *std::move(received);
  call->request = google::protobuf::Arena::CreateMessage<pb::ModelInferRequest>(&call->arena);
  {
    grpc::ByteBuffer copy(request);
    grpc::ProtoBufferReader reader(&copy);
    if (!reader.status().ok() || !call->request->ParseFromZeroCopyStream(&reader)) {
      return Malformed();
    }
  }
  const pb::ModelInferRequest& wire = *call->request;
  InferRequest& infer = call->infer;
  infer.model_name = wire.model_name();
  infer.model_version = wire.model_version();
  infer.id = wire.id();
  for (const auto& [name, value] : wire.parameters()) {
    absl::StatusOr<ParamValue> converted = ToParamValue(value, absl::StrCat("parameters.", name));
    if (!converted.ok()) return converted.status();
    infer.parameters.push_back({name, *std::move(converted)});
  }
  const bool raw = wire.raw_input_contents_size() > 0;
  if (raw && wire.raw_input_contents_size() != wire.inputs_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_input_contents: ", wire.raw_input_contents_size(),
        wire.raw_input_contents_size() == 1 ? " entry" : " entries", " for ",
        wire.inputs_size(), wire.inputs_size() == 1 ? " input" : " inputs",
        "; give one per input, in the order of inputs"));
  }
  for (int i = 0; i < wire.inputs_size(); ++i) {
    const pb::ModelInferRequest::InferInputTensor& input = wire.inputs(i);
    InputTensor tensor;
    tensor.name = input.name();
    tensor.datatype = input.datatype();
    tensor.shape.assign(input.shape().begin(), input.shape().end());
    if (raw) {
      if (input.has_contents()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "inputs[", i, "].contents: given together with raw_input_contents; send every "
            "tensor one way"));
      }
      tensor.data = wire.raw_input_contents(i);
    } else {
      absl::StatusOr<absl::Span<const char>> data = TypedContents(input, i);
      if (!data.ok()) return data.status();
      tensor.data = *data;
    }
    infer.inputs.push_back(std::move(tensor));
  }
  for (const pb::ModelInferRequest::InferRequestedOutputTensor& output : wire.outputs()) {
    infer.outputs.push_back(output.name());
  }

  absl::StatusOr<InferencePlan> plan = PlanInference(infer, engine_);
  if (!plan.ok()) return plan.status();
  call->plan = *std::move(plan);
  stats->items = 1;
  stats->elements = call->plan.elements;
  if (call->plan.timeout.has_value()) call->timeout_deadline = absl::Now() + *call->plan.timeout;

  // The response's fields but the tensors, and its size, before any memory is taken.
  pb::ModelInferResponse head;
  head.set_model_name(std::string(call->plan.model->name));
  head.set_model_version(std::string(kModelVersion));
  head.set_id(wire.id());
  uint64_t response_bytes = 0;
  for (const PlannedOutput& output : call->plan.outputs) {
    if (!output.requested) continue;
    pb::ModelInferResponse::InferOutputTensor* out = head.add_outputs();
    out->set_name(std::string(output.name));
    out->set_datatype(std::string(DatatypeName(output.dtype)));
    for (int64_t dim : output.shape) out->add_shape(dim);
    response_bytes += 1 + 10 + output.bytes;  // tag, length, bytes
  }
  call->response_head = head.SerializeAsString();
  response_bytes += call->response_head.size();
  if (options_.max_message_bytes > 0 &&
      response_bytes > static_cast<uint64_t>(options_.max_message_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the response would be ", response_bytes, " bytes, more than ",
        options_.max_message_bytes, " (the limit, --max_message_bytes); request fewer "
        "outputs or send a smaller tensor"));
  }

  absl::StatusOr<Reservation> working = buffers_->Reserve(call->plan.working_bytes);
  if (!working.ok()) return working.status();
  call->working = *std::move(working);
  for (const PlannedOutput& output : call->plan.outputs) {
    if (output.bytes == 0) {
      call->buffers.emplace_back();
      continue;
    }
    absl::StatusOr<Buffer> buffer = buffers_->Acquire(output.bytes);
    if (!buffer.ok()) return buffer.status();
    call->buffers.push_back(*std::move(buffer));
  }
  return call;
}

bool InferenceServiceImpl::ComputesInline(const Call& call) const {
  return call.plan.item.input.data.size() < options_.inline_bytes;
}

absl::StatusOr<grpc::ByteBuffer> InferenceServiceImpl::Run(Call& call,
                                                           const std::atomic<bool>* cancelled,
                                                           CallStats* stats) {
  if (call.timeout_deadline.has_value() && absl::Now() >= *call.timeout_deadline) {
    return absl::DeadlineExceededError(
        "deadline exceeded (the request's timeout parameter) before the computation started");
  }
  std::vector<absl::Span<char>> spans;
  spans.reserve(call.buffers.size());
  for (const Buffer& buffer : call.buffers) spans.push_back(buffer.span());
  if (absl::Status computed = RunInference(engine_, call.plan, spans, cancelled);
      !computed.ok()) {
    return computed;
  }
  gate_.metrics().RecordElements(call.plan.model->kind, call.plan.item.input.dtype,
                                 call.plan.elements);
  // The head, then each requested output as a raw_output_contents field: its tag and
  // length, then the pooled buffer itself, lent to gRPC until it has been sent.
  std::vector<grpc::Slice> slices;
  std::string prefix = std::move(call.response_head);
  for (size_t i = 0; i < call.plan.outputs.size(); ++i) {
    if (!call.plan.outputs[i].requested) continue;
    uint8_t header[1 + 10];  // the tag, then the length: at most 10 varint bytes
    header[0] = kRawOutputContentsTag;
    const uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(
        call.buffers[i].size(), header + 1);
    prefix.append(reinterpret_cast<const char*>(header), static_cast<size_t>(end - header));
    slices.emplace_back(prefix);
    prefix.clear();
    if (call.buffers[i].size() > 0) slices.push_back(std::move(call.buffers[i]).ToSlice());
  }
  if (!prefix.empty()) slices.emplace_back(prefix);
  grpc::ByteBuffer response(slices.data(), slices.size());
  stats->sent_bytes += response.Length();
  return response;
}

namespace {

// The call's final status: a Cancelled from the engine becomes DeadlineExceeded when the
// request's timeout parameter has passed, and otherwise as for Compute (the transport's
// deadline).
absl::Status ResolveCancellation(absl::Status status, const grpc::CallbackServerContext& context,
                                 std::optional<absl::Time> timeout_deadline) {
  if (status.code() == absl::StatusCode::kCancelled && timeout_deadline.has_value() &&
      absl::Now() >= *timeout_deadline) {
    return absl::DeadlineExceededError(
        "deadline exceeded (the request's timeout parameter): the computation was stopped "
        "and its partial results discarded");
  }
  return ActivationServiceImpl::ResolveCancellation(std::move(status), context);
}

// A ModelInfer computed on the compute pool; finished from the worker.
class PooledInferReactor final : public grpc::ServerUnaryReactor {
 public:
  PooledInferReactor(InferenceServiceImpl* service, grpc::CallbackServerContext* context,
                     absl::Time start, const CallStats& stats,
                     std::unique_ptr<InferenceServiceImpl::Call> call,
                     std::optional<absl::Time> timeout_deadline, grpc::ByteBuffer* response)
      : service_(*service),
        context_(*context),
        start_(start),
        response_(*response),
        stats_(stats),
        call_(std::move(call)),
        timeout_deadline_(timeout_deadline) {
    if (timeout_deadline_.has_value()) {
      // The flag outlives this reactor: the alarm may fire (or report its cancellation)
      // after the call is done.
      timeout_alarm_.Set(absl::ToChronoTime(*timeout_deadline_),
                         [flag = cancelled_](bool fired) {
                           if (fired) flag->store(true, std::memory_order_relaxed);
                         });
    }
    const bool scheduled = service_.pool().TrySchedule([this] {
      absl::StatusOr<grpc::ByteBuffer> response =
          service_.Run(*call_, cancelled_.get(), &stats_);
      call_.reset();  // the buffers not sent go back to the pool now
      if (!response.ok()) {
        FinishCall(response.status());
        return;
      }
      response_ = *std::move(response);
      FinishCall(absl::OkStatus());
    });
    if (!scheduled) {
      call_.reset();
      FinishCall(absl::ResourceExhaustedError(
          "the compute queue is full (--max_queued_batches); retry later"));
    }
  }

  void OnCancel() override { cancelled_->store(true, std::memory_order_relaxed); }
  void OnDone() override { delete this; }

 private:
  void FinishCall(absl::Status status) {
    status = ResolveCancellation(std::move(status), context_, timeout_deadline_);
    service_.gate().Record("ModelInfer", context_.peer(), start_, stats_, status);
    service_.gate().Release(CallKind::kUnary);  // before Finish, as Compute does
    Finish(wire::ToGrpcStatus(status));          // `this` may be deleted from here on
  }

  InferenceServiceImpl& service_;
  const grpc::CallbackServerContext& context_;
  const absl::Time start_;
  grpc::ByteBuffer& response_;
  CallStats stats_;
  std::unique_ptr<InferenceServiceImpl::Call> call_;
  const std::optional<absl::Time> timeout_deadline_;
  const std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  grpc::Alarm timeout_alarm_;
};

}  // namespace

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelInfer(grpc::CallbackServerContext* context,
                                                           const grpc::ByteBuffer* request,
                                                           grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  CallStats stats;
  absl::Status status = AdmitGrpcCall(gate_, *context, CallKind::kUnary);
  const bool admitted = status.ok();
  std::optional<absl::Time> timeout_deadline;
  if (admitted && context->deadline() <= std::chrono::system_clock::now()) {
    status = absl::DeadlineExceededError("deadline exceeded before the computation started");
  } else if (admitted) {
    absl::StatusOr<std::unique_ptr<Call>> call = Prepare(*request, &stats);
    if (call.ok()) {
      timeout_deadline = (*call)->timeout_deadline;
      if (!ComputesInline(**call)) {
        return new PooledInferReactor(this, context, start, stats, *std::move(call),
                                      timeout_deadline, response);
      }
      // Small enough to finish in microseconds on this thread: not cancellable, as
      // Compute's inline batches.
      absl::StatusOr<grpc::ByteBuffer> computed = Run(**call, nullptr, &stats);
      if (computed.ok()) {
        *response = *std::move(computed);
      } else {
        status = computed.status();
      }
    } else {
      status = call.status();
    }
  }
  status = ResolveCancellation(std::move(status), *context, timeout_deadline);
  gate_.Record("ModelInfer", context->peer(), start, stats, status);
  if (admitted) gate_.Release(CallKind::kUnary);
  return FinishWith(context, status);
}

}  // namespace inference
}  // namespace server
}  // namespace actserve
