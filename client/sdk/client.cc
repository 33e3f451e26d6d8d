// See actserve/client.h: every Client method, each starting at Client::StartCall.
#include "actserve/client.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "actserve/v1/activation.grpc.pb.h"  // also grpc::SerializationTraits of messages
#include "actserve/v1/activation.pb.h"
#include "client/sdk/batch_internal.h"
#include "client/sdk/call_start.h"
#include "client/sdk/channel.h"
#include "client/sdk/chunked.h"
#include "client/sdk/compute_stream.h"
#include "client/sdk/health_wire.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "proto/convert.h"
#include "proto/grpc_status.h"

namespace actserve {

struct Client::Stubs {
  explicit Stubs(const std::shared_ptr<grpc::Channel>& channel)
      : service(v1::ActivationService::NewStub(channel)), generic(channel) {}

  std::unique_ptr<v1::ActivationService::Stub> service;
  // For grpc.health.v1.Health, which has no generated stub, and for the chunked stream,
  // which sends and receives raw bytes.
  grpc::GenericStub generic;
};

namespace {

constexpr char kHealthCheckMethod[] = "/grpc.health.v1.Health/Check";

// Takes a result tensor out of a response (moving its bytes). std::nullopt when the
// server left it unset; InvalidArgument naming `path` when it is malformed.
absl::StatusOr<std::optional<Tensor>> TakeTensor(bool present, v1::Tensor* proto,
                                                 absl::string_view path) {
  // A server may also mark a result it did not compute by an empty, typeless message.
  const bool empty =
      proto->dtype() == v1::DTYPE_UNSPECIFIED && proto->shape().empty() && proto->data().empty();
  if (!present || empty) return std::optional<Tensor>();
  absl::StatusOr<Tensor> tensor =
      Tensor::FromBytes(wire::DTypeFromProto(proto->dtype()),
                        std::vector<int64_t>(proto->shape().begin(), proto->shape().end()),
                        std::move(*proto->mutable_data()));
  if (!tensor.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed reply from the server: ", path, ": ", tensor.status().message()));
  }
  return std::optional<Tensor>(*std::move(tensor));
}

absl::StatusOr<std::vector<ItemOutput>> TakeOutputs(v1::ComputeResponse* response,
                                                    int expected_items) {
  if (response->results_size() != expected_items) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed reply from the server: ", response->results_size(), " results for ",
                     expected_items, " items"));
  }
  std::vector<ItemOutput> outputs(static_cast<size_t>(expected_items));
  for (int i = 0; i < expected_items; ++i) {
    v1::ComputeResult* result = response->mutable_results(i);
    const std::string path = absl::StrCat("results[", i, "]");
    absl::StatusOr<std::optional<Tensor>> output =
        TakeTensor(result->has_output(), result->mutable_output(), path + ".output");
    if (!output.ok()) return output.status();
    absl::StatusOr<std::optional<Tensor>> grad_input =
        TakeTensor(result->has_grad_input(), result->mutable_grad_input(), path + ".grad_input");
    if (!grad_input.ok()) return grad_input.status();
    absl::StatusOr<std::optional<Tensor>> grad_weight =
        TakeTensor(result->has_grad_weight(), result->mutable_grad_weight(), path + ".grad_weight");
    if (!grad_weight.ok()) return grad_weight.status();
    outputs[i] = ItemOutput{*std::move(output), *std::move(grad_input), *std::move(grad_weight)};
  }
  return outputs;
}

template <typename T>
std::vector<T> ValuesOrEmpty(const std::optional<Tensor>& tensor) {
  return tensor.has_value() ? tensor->Values<T>() : std::vector<T>();
}

// One Compute call carrying `batch`; `batch.status()` unsent when the batch recorded an
// error.
absl::StatusOr<std::vector<ItemOutput>> SendBatch(const client_internal::CallStart& call,
                                                  const Batch& batch) {
  if (!batch.status().ok()) return batch.status();
  v1::ComputeResponse response;
  absl::Status status = wire::FromGrpcStatus(
      call.service->Compute(call.context.get(), client_internal::BatchWire::Request(batch),
                            &response));
  if (!status.ok()) return status;
  return TakeOutputs(&response, batch.size());
}

// The typed calls: one item, the input's own dtype for every result.
template <typename T>
absl::StatusOr<TypedResult<T>> ComputeTyped(const client_internal::CallStart& call,
                                            TensorView input, const ActivationArg& activation,
                                            Mode mode, std::optional<TensorView> grad_output) {
  Batch batch;
  batch.Add(input, activation, mode, grad_output);
  absl::StatusOr<std::vector<ItemOutput>> outputs = SendBatch(call, batch);
  if (!outputs.ok()) return outputs.status();
  const ItemOutput& item = outputs->front();
  for (const std::optional<Tensor>* tensor : {&item.output, &item.grad_input, &item.grad_weight}) {
    if (tensor->has_value() && (*tensor)->dtype() != input.dtype) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed reply from the server: a ", DTypeName((*tensor)->dtype()),
                       " result for a ", DTypeName(input.dtype), " input"));
    }
  }
  return TypedResult<T>{ValuesOrEmpty<T>(item.output), ValuesOrEmpty<T>(item.grad_input),
                        ValuesOrEmpty<T>(item.grad_weight)};
}

std::string ParameterTypeName(v1::ParameterInfo::Type type) {
  switch (type) {
    case v1::ParameterInfo::TYPE_REAL:
      return "real";
    case v1::ParameterInfo::TYPE_INTEGER:
      return "integer";
    case v1::ParameterInfo::TYPE_CHOICE:
      return "choice";
    case v1::ParameterInfo::TYPE_TENSOR:
      return "tensor";
    default:
      return "unspecified";
  }
}

ServiceDescription DescriptionFromProto(const v1::ListActivationsResponse& response) {
  ServiceDescription description;
  for (const v1::ActivationInfo& info : response.activations()) {
    ActivationDescription activation;
    activation.name = info.name();
    activation.description = info.description();
    activation.formula = info.formula();
    activation.gradient = info.gradient();
    activation.elementwise = info.elementwise();
    activation.example = info.example();
    for (const v1::ParameterInfo& param : info.parameters()) {
      activation.parameters.push_back(ParameterDescription{
          param.name(), ParameterTypeName(param.type()), param.required(), param.default_text(),
          param.valid_range(),
          std::vector<std::string>(param.choices().begin(), param.choices().end())});
    }
    description.activations.push_back(std::move(activation));
  }
  const v1::ServerInfo& server = response.server();
  description.server.version = server.version();
  for (int dtype : server.dtypes()) {
    description.server.dtypes.push_back(wire::DTypeFromProto(static_cast<v1::DType>(dtype)));
  }
  description.server.simd_target = server.simd_target();
  description.server.threads = server.threads();
  description.server.max_message_bytes = server.limits().max_message_bytes();
  description.server.max_elements = server.limits().max_elements();
  description.server.max_inflight = server.limits().max_inflight();
  return description;
}

std::string ByteBufferToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

}  // namespace

absl::string_view HealthStatusName(HealthStatus status) {
  switch (status) {
    case HealthStatus::kServing:
      return "SERVING";
    case HealthStatus::kNotServing:
      return "NOT_SERVING";
    case HealthStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    case HealthStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

absl::StatusOr<std::string> ReadTokenFile(absl::string_view path) {
  absl::StatusOr<std::string> contents = client_internal::ReadFileContents(path, "token file");
  if (!contents.ok()) return contents.status();
  absl::string_view token = absl::StripTrailingAsciiWhitespace(*contents);
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("token file '", path, "' is empty"));
  }
  absl::Status checked = client_internal::CheckToken(token);
  if (!checked.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file '", path, "': ", checked.message()));
  }
  return std::string(token);
}

Client::Client(absl::string_view target, ClientOptions options) : options_(std::move(options)) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      client_internal::MakeChannel(target, options_);
  if (!channel.ok()) {
    setup_status_ = channel.status();
    return;
  }
  channel_ = *std::move(channel);
  stubs_ = std::make_unique<Stubs>(channel_);
}

Client::Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : options_(std::move(options)),
      setup_status_(client_internal::CheckToken(options_.token)),
      channel_(std::move(channel)),
      stubs_(std::make_unique<Stubs>(channel_)) {}

Client::~Client() = default;

absl::StatusOr<client_internal::CallStart> Client::StartCall() const {
  if (!setup_status_.ok()) return setup_status_;
  client_internal::CallStart call;
  call.context = std::make_unique<grpc::ClientContext>();
  client_internal::PrepareContext(options_, call.context.get());
  call.service = stubs_->service.get();
  call.generic = &stubs_->generic;
  return call;
}

absl::StatusOr<TypedResult<float>> Client::Compute(
    absl::Span<const float> x, absl::Span<const int64_t> shape, const ActivationArg& activation,
    Mode mode, std::optional<absl::Span<const float>> grad_output) const {
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  std::optional<TensorView> dy;
  if (grad_output.has_value()) dy = MakeTensorView(*grad_output, shape);
  return ComputeTyped<float>(*call, MakeTensorView(x, shape), activation, mode, dy);
}

absl::StatusOr<TypedResult<double>> Client::Compute(
    absl::Span<const double> x, absl::Span<const int64_t> shape, const ActivationArg& activation,
    Mode mode, std::optional<absl::Span<const double>> grad_output) const {
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  std::optional<TensorView> dy;
  if (grad_output.has_value()) dy = MakeTensorView(*grad_output, shape);
  return ComputeTyped<double>(*call, MakeTensorView(x, shape), activation, mode, dy);
}

absl::StatusOr<TypedResult<uint16_t>> Client::Compute(
    DType dtype, absl::Span<const uint16_t> x, absl::Span<const int64_t> shape,
    const ActivationArg& activation, Mode mode,
    std::optional<absl::Span<const uint16_t>> grad_output) const {
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  if (dtype != DType::kFloat16 && dtype != DType::kBFloat16) {
    return absl::InvalidArgumentError(
        absl::StrCat("16-bit values need dtype float16 or bfloat16, got ", DTypeName(dtype)));
  }
  std::optional<TensorView> dy;
  if (grad_output.has_value()) dy = MakeTensorView(dtype, *grad_output, shape);
  return ComputeTyped<uint16_t>(*call, MakeTensorView(dtype, x, shape), activation, mode, dy);
}

absl::StatusOr<std::vector<ItemOutput>> Client::Compute(const Batch& batch) const {
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  return SendBatch(*call, batch);
}

absl::StatusOr<std::vector<std::vector<ItemOutput>>> Client::ComputeStream(
    absl::Span<const Batch> batches) const {
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  for (size_t i = 0; i < batches.size(); ++i) {
    if (!batches[i].status().ok()) {
      return absl::Status(batches[i].status().code(),
                          absl::StrCat("batches[", i, "]: ", batches[i].status().message()));
    }
  }
  std::vector<std::vector<ItemOutput>> all_outputs;
  all_outputs.reserve(batches.size());
  // Every batch may be in flight at once: the batches are already in memory, and the
  // writer never waits for a response before sending the next one.
  const client_internal::StreamRequestMaker make_request =
      [batches](size_t i) -> absl::StatusOr<grpc::ByteBuffer> {
    grpc::ByteBuffer bytes;
    bool own_buffer = false;
    const grpc::Status serialized = grpc::SerializationTraits<v1::ComputeRequest>::Serialize(
        client_internal::BatchWire::Request(batches[i]), &bytes, &own_buffer);
    if (!serialized.ok()) return wire::FromGrpcStatus(serialized);
    return bytes;
  };
  const client_internal::StreamResponseTaker take_response =
      [&batches, &all_outputs](size_t i, grpc::ByteBuffer* bytes) -> absl::Status {
    v1::ComputeResponse response;
    const grpc::Status parsed =
        grpc::SerializationTraits<v1::ComputeResponse>::Deserialize(bytes, &response);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("malformed reply from the server: ",
                                                     parsed.error_message()));
    }
    absl::StatusOr<std::vector<ItemOutput>> outputs = TakeOutputs(&response, batches[i].size());
    if (!outputs.ok()) return outputs.status();
    all_outputs.push_back(*std::move(outputs));
    return absl::OkStatus();
  };
  absl::Status status = client_internal::RunComputeStream(*call, batches.size(), batches.size(),
                                                          make_request, take_response);
  if (!status.ok()) return status;
  return all_outputs;
}

absl::StatusOr<ServiceDescription> Client::ListActivations() const {
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  v1::ListActivationsResponse response;
  absl::Status status = wire::FromGrpcStatus(
      call->service->ListActivations(call->context.get(), v1::ListActivationsRequest(), &response));
  if (!status.ok()) return status;
  return DescriptionFromProto(response);
}

absl::StatusOr<HealthStatus> Client::Health(absl::string_view service) const {
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  const std::string request_bytes = client_internal::EncodeHealthCheckRequest(service);
  grpc::Slice request_slice(request_bytes);
  grpc::ByteBuffer request(&request_slice, 1);
  grpc::ByteBuffer response;
  grpc::Status call_status;
  absl::Notification done;
  call->generic->UnaryCall(call->context.get(), kHealthCheckMethod, grpc::StubOptions(), &request,
                           &response, [&call_status, &done](grpc::Status status) {
                             call_status = std::move(status);
                             done.Notify();
                           });
  done.WaitForNotification();
  absl::Status status = wire::FromGrpcStatus(call_status);
  if (!status.ok()) return status;
  return client_internal::DecodeHealthCheckResponse(ByteBufferToString(response));
}

absl::StatusOr<std::optional<Tensor>> Client::ComputeChunkedInto(
    const TensorView& input, const ActivationArg& activation, Mode mode,
    const std::optional<TensorView>& grad_output, const std::optional<TensorView>& prelu_weight,
    const ChunkedOutputs& outputs, int64_t chunk_bytes, int window) const {
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  return client_internal::ComputeChunkedOn(*call, input, activation, mode, grad_output,
                                           prelu_weight, outputs, chunk_bytes, window);
}

absl::StatusOr<ItemOutput> Client::ComputeChunked(const TensorView& input,
                                                  const ActivationArg& activation, Mode mode,
                                                  const std::optional<TensorView>& grad_output,
                                                  const std::optional<TensorView>& prelu_weight,
                                                  int64_t chunk_bytes) const {
  // Started before the results are allocated, so that a Client whose setup failed
  // returns its error without first allocating the input's size twice.
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  if (absl::Status checked = client_internal::CheckChunkable(input, grad_output);
      !checked.ok()) {
    return checked;
  }
  // The results are the returned tensors' own strings, written in place chunk by chunk.
  std::string output(ComputesOutput(mode) ? input.data.size() : 0, '\0');
  std::string grad_input(ComputesGradient(mode) ? input.data.size() : 0, '\0');
  absl::StatusOr<std::optional<Tensor>> grad_weight =
      client_internal::ComputeChunkedOn(
          *call, input, activation, mode, grad_output, prelu_weight,
          ChunkedOutputs{absl::MakeSpan(output.data(), output.size()),
                         absl::MakeSpan(grad_input.data(), grad_input.size())},
          chunk_bytes, kDefaultChunkWindow);
  if (!grad_weight.ok()) return grad_weight.status();
  ItemOutput result;
  const std::vector<int64_t> shape(input.shape.begin(), input.shape.end());
  if (ComputesOutput(mode)) {
    absl::StatusOr<Tensor> tensor = Tensor::FromBytes(input.dtype, shape, std::move(output));
    if (!tensor.ok()) return tensor.status();
    result.output = *std::move(tensor);
  }
  if (ComputesGradient(mode)) {
    absl::StatusOr<Tensor> tensor = Tensor::FromBytes(input.dtype, shape, std::move(grad_input));
    if (!tensor.ok()) return tensor.status();
    result.grad_input = *std::move(tensor);
  }
  result.grad_weight = *std::move(grad_weight);
  return result;
}

}  // namespace actserve
