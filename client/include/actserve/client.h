// The actserve C++ SDK: a client for the ActivationService (DESIGN.md section 2), which
// computes neural-network activations and their gradients on a remote server.
//
//   actserve::Client client("localhost:50051");
//   std::vector<float> x = {-2, -1, 0, 1, 2};
//   absl::StatusOr<actserve::TypedResult<float>> r =
//       client.Compute(absl::MakeConstSpan(x), {5}, "gelu");
//   if (!r.ok()) { /* r.status(): the server's code and message, or a local error */ }
//   r->output;      // gelu(x)
//   r->grad_input;  // gelu'(x), since no grad_output was given
//
// Every call blocks until the reply arrives or `ClientOptions::deadline` passes, and
// returns an absl::Status with the gRPC status code (UNAVAILABLE when the server cannot be
// reached, DEADLINE_EXCEEDED, the server's INVALID_ARGUMENT with its message, ...). An
// activation given as text is parsed on the client: a bad spec is InvalidArgument before
// any network traffic.
//
// A Client is thread-safe: any number of threads may call it at once, and calls share
// one gRPC channel (HTTP/2 connections are multiplexed and, with several addresses,
// balanced round-robin).
#ifndef ACTSERVE_CLIENT_INCLUDE_ACTSERVE_CLIENT_H_
#define ACTSERVE_CLIENT_INCLUDE_ACTSERVE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "actserve/batch.h"
#include "actserve/tensor.h"
#include "actserve/types.h"

namespace grpc {
class Channel;
class ChannelCredentials;
}  // namespace grpc

namespace actserve {
namespace client_internal {
struct CallStart;  // client/sdk/call_start.h
}  // namespace client_internal

// TLS settings of a channel. Each PEM item is given either inline (`*_pem`) or as a
// file (`*_file`, read when the Client is constructed); giving both for one item is
// InvalidArgument, as is a certificate without its key or a key without its certificate.
// A file that cannot be read is NotFound / PermissionDenied (FailedPrecondition for a
// directory) naming the file. Such errors do not fail the constructor: every call of that
// Client returns them, before it looks at its own arguments and without any network
// traffic.
struct TlsOptions {
  // The CA certificates trusted to sign the server's certificate (the server's
  // --tls_cert). Both empty: gRPC's default roots ($GRPC_DEFAULT_SSL_ROOTS_FILE_PATH,
  // else the roots bundled with gRPC). Default: empty.
  std::string ca_file;
  std::string ca_pem;

  // This client's certificate chain and private key, for a server that requires mutual
  // TLS (its --tls_client_ca). Empty: no client certificate. Default: empty.
  std::string cert_file;
  std::string cert_pem;
  std::string key_file;
  std::string key_pem;

  // The host name to verify in the server's certificate instead of the target's host
  // (gRPC's ssl_target_name_override): for connecting by IP address or through a tunnel
  // to a server whose certificate names its host, and for tests. Empty: the target's
  // host. Default: empty.
  std::string server_name;
};

struct ClientOptions {
  // How long each call may take, from its start to its last reply; then it fails with
  // DEADLINE_EXCEEDED and the server stops computing it. For ComputeStream this bounds
  // the whole stream. absl::InfiniteDuration() for no deadline. Default: 30 s.
  absl::Duration deadline = absl::Seconds(30);

  // The largest message sent or received, in bytes (gRPC's own default is 4 MiB for
  // received messages). A larger one fails with RESOURCE_EXHAUSTED. The server has its
  // own limit (see `ServerDescription`). Default: 256 MiB.
  int max_message_bytes = 256 << 20;

  // gRPC load-balancing policy, set through the channel's service config. "round_robin"
  // spreads calls over every address the target resolves to (several pods behind a
  // headless Kubernetes Service, or "ipv4:10.0.0.1:50051,10.0.0.2:50051"); "pick_first"
  // uses one connection; "" leaves gRPC's default (pick_first). Default: "round_robin".
  std::string load_balancing_policy = "round_robin";

  // How many times gRPC may try a call that failed before any reply (every RPC of the
  // service is idempotent) with UNAVAILABLE — a server not reachable yet, a replica that
  // died, or one that is draining after SIGTERM — or with CANCELLED from the server — a
  // replica whose shutdown caught the call in transit. A call cancelled by the caller or
  // past its deadline is never retried. With round_robin each attempt picks the next
  // ready replica. 1 disables retries; gRPC caps the value at 5. Default: 3.
  int max_attempts = 3;

  // The pause before a retry is random in [0, b], where b starts at `initial_backoff`
  // and doubles per retry up to `max_backoff` (gRPC's retry policy). Both must be > 0.
  // Defaults: 100 ms and 1 s.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(1);

  // The bytes of a call's request messages that gRPC keeps so that it can send them again
  // on a retry (its channel argument "grpc.per_rpc_retry_buffer_size", whose own default
  // is 256 KiB). A call whose messages grow past it commits to its current attempt and is
  // not retried. What gRPC keeps are references to the request's serialized bytes, not a
  // copy (a retry sends the same bytes again, it does not serialize or copy the request);
  // the cost is only that they stay in memory until the server's reply begins. Default:
  // 256 MiB, as `max_message_bytes`, so that every unary request is retryable.
  int retry_buffer_bytes = 256 << 20;

  // With true, a call made while no connection is ready (the server is starting, or every
  // replica is restarting) waits for one until its deadline instead of failing at once
  // with UNAVAILABLE (gRPC's waitForReady). Default: false, so that an unreachable server
  // is reported at once.
  bool wait_for_ready = false;

  // With true, the channel watches each server's grpc.health.v1 status (a Health/Watch
  // stream per connection, gRPC's client-side health checking) and the load-balancing
  // policy sends calls only to servers that answer SERVING: a replica that starts to
  // drain after SIGTERM (NOT_SERVING) stops getting calls as soon as it says so, instead
  // of refusing them. Then every call, Health() included, fails with UNAVAILABLE (or waits,
  // with `wait_for_ready`) while no server is SERVING. Default: false.
  bool health_checked_balancing = false;

  // TLS for the channel (see TlsOptions); std::nullopt: plaintext. Ignored by the
  // Client(channel, options) constructor, whose channel has its own credentials.
  // Default: std::nullopt.
  std::optional<TlsOptions> tls;

  // A bearer token, sent on every call (health checks included) as the metadata
  // "authorization: Bearer <token>", for a server started with --auth_token_file. Only
  // visible ASCII (no spaces or line breaks; ReadTokenFile loads one from a file). The
  // SDK never logs it or puts it in an error message. It is sent on a plaintext channel
  // too, so beyond localhost use it with `tls`. Empty: no token. Default: "".
  std::string token;

  // Channel credentials built by the caller (e.g. TLS with a custom verifier), used
  // instead of `tls`; setting both is InvalidArgument. nullptr: `tls`, or plaintext when
  // that is unset. Default: nullptr.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// Reads a bearer token from the file at `path`: its contents without trailing whitespace
// (the usual final newline). NotFound / PermissionDenied naming the path when it cannot
// be read; InvalidArgument when the token is empty or not one line of visible ASCII (the
// message never contains the token). Thread-safe.
absl::StatusOr<std::string> ReadTokenFile(absl::string_view path);

// The result of one computed item, as the server returned it. A result the item's mode
// did not ask for is std::nullopt.
struct ItemOutput {
  std::optional<Tensor> output;       // y = f(x): the input's shape and dtype
  std::optional<Tensor> grad_input;   // dx = dy * f'(x): the input's shape and dtype
  std::optional<Tensor> grad_weight;  // PReLU with a gradient: the weight's shape
};

// The result of a typed call, as flat row-major vectors in the input's element type
// (`uint16_t` bit patterns for float16 and bfloat16). A result the mode did not ask for
// is empty.
template <typename T>
struct TypedResult {
  std::vector<T> output;
  std::vector<T> grad_input;
  std::vector<T> grad_weight;  // PReLU only
};

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class HealthStatus {
  kUnknown = 0,
  kServing = 1,
  kNotServing = 2,
  kServiceUnknown = 3,  // the server does not know the service asked about
};
// "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN".
absl::string_view HealthStatusName(HealthStatus status);

// One parameter of an activation, as the server describes it.
struct ParameterDescription {
  std::string name;                  // PyTorch's name, e.g. "negative_slope"
  std::string type;                  // "real", "integer", "choice", "tensor" (or "unspecified")
  bool required = false;             // no default: threshold's two parameters
  std::string default_text;          // e.g. "0.01", "none"; empty when required
  std::string valid_range;           // e.g. "nonzero", ">= 0"; empty when any finite value
  std::vector<std::string> choices;  // "choice" only, e.g. {"none", "tanh"}
};

struct ActivationDescription {
  std::string name;         // text-form name, e.g. "leaky_relu"
  std::string description;  // one line
  std::string formula;      // forward
  std::string gradient;     // backward, in terms of g = dy
  std::vector<ParameterDescription> parameters;
  bool elementwise = true;  // false for softmax and log_softmax
  std::string example;      // a text-form spec
};

struct ServerDescription {
  std::string version;            // e.g. "0.1.0"
  std::vector<DType> dtypes;      // dtypes the server accepts
  std::string simd_target;        // e.g. "AVX3"
  int threads = 0;                // compute threads
  int64_t max_message_bytes = 0;  // 0 means unlimited
  int64_t max_elements = 0;       // input elements per request; 0 means unlimited
  int64_t max_inflight = 0;       // concurrent calls; 0 means unlimited
};

struct ServiceDescription {
  std::vector<ActivationDescription> activations;
  ServerDescription server;
};

class Client {
 public:
  // Connects to `target`, in gRPC's syntax: "localhost:50051",
  // "dns:///actserve.default.svc:50051", "ipv4:127.0.0.1:5001,127.0.0.1:5002". The
  // connection is made lazily, so construction never fails; an unreachable server shows
  // up as UNAVAILABLE from the first call (so does a failed TLS handshake: an untrusted
  // server certificate, a plaintext client talking to a TLS server, no client certificate
  // for a mutual-TLS server), a missing or wrong token as UNAUTHENTICATED. Options that
  // cannot be used (an unreadable TLS file, a malformed token; see TlsOptions) make every
  // call return that error.
  explicit Client(absl::string_view target, ClientOptions options = ClientOptions());

  // Uses an existing channel (e.g. an in-process one). The channel's own arguments and
  // credentials rule; of `options`, only `deadline` and `token` apply.
  Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return options_; }

  // Computes one tensor `x` of `shape` through `activation` (text or spec) in `mode`,
  // with dy = `grad_output` when given (it must have x's size). The float16 / bfloat16
  // form takes bit patterns and their `dtype` (kFloat16 or kBFloat16; any other dtype is
  // InvalidArgument). For PReLU this sends the spec's single weight; use a Batch to send
  // one weight per channel. Errors: InvalidArgument for a bad spec or a size mismatch
  // (before any network call), else the server's status.
  absl::StatusOr<TypedResult<float>> Compute(
      absl::Span<const float> x, absl::Span<const int64_t> shape, const ActivationArg& activation,
      Mode mode = Mode::kForwardBackward,
      std::optional<absl::Span<const float>> grad_output = std::nullopt) const;
  absl::StatusOr<TypedResult<double>> Compute(
      absl::Span<const double> x, absl::Span<const int64_t> shape, const ActivationArg& activation,
      Mode mode = Mode::kForwardBackward,
      std::optional<absl::Span<const double>> grad_output = std::nullopt) const;
  absl::StatusOr<TypedResult<uint16_t>> Compute(
      DType dtype, absl::Span<const uint16_t> x, absl::Span<const int64_t> shape,
      const ActivationArg& activation, Mode mode = Mode::kForwardBackward,
      std::optional<absl::Span<const uint16_t>> grad_output = std::nullopt) const;

  // Computes a whole batch in one request. One ItemOutput per item, in order. Returns
  // `batch.status()` unsent when the batch recorded an error; an empty batch is valid
  // (no results). Also InvalidArgument if the server's reply has the wrong number of
  // results or a malformed tensor (a server bug).
  absl::StatusOr<std::vector<ItemOutput>> Compute(const Batch& batch) const;

  // Sends every batch on one ComputeStream call, pipelined (requests are written while
  // responses are read, as ComputeChunked does), and returns their outputs in the same
  // order. All or nothing: the
  // first invalid batch is reported unsent; the first failed batch fails the call (its
  // status is the stream's). The deadline covers the whole stream.
  absl::StatusOr<std::vector<std::vector<ItemOutput>>> ComputeStream(
      absl::Span<const Batch> batches) const;

  // Computes one tensor of any size on one ComputeStream call, in chunks of at most
  // `chunk_bytes` bytes of input, pipelined with at most `window` chunks sent and not yet
  // answered, and joins the results into tensors of the input's shape. How it cuts:
  // elementwise activations, and PReLU with a single weight, in flat runs of elements
  // (any shape, even one huge row); PReLU with one weight per channel (dimension 1)
  // along dimension 0 when a row fits a chunk, otherwise in runs of whole channel planes
  // of one row, or runs within one plane when a plane is larger than a chunk, each sent
  // with the weights of its channels (so any size goes); softmax / log_softmax
  // along dimension 0 when `dim` is another dimension, and in blocks of columns of the
  // [shape[0], rest] view when `dim` is 0 (a 1-D softmax is one chunk). The results equal
  // those of a single Compute, except that a PReLU grad_weight is the sum of the chunks'
  // grad_weights, added in double and rounded once to the dtype (the chunks' own sums were
  // already rounded, so float16 / bfloat16 results may differ in the last place).
  // `prelu_weight` is as in Batch::Add. InvalidArgument before any network call for a bad
  // spec, a size or grad_output mismatch, chunk_bytes <= 0 or window <= 0; otherwise the
  // first failed chunk's status. Defaults: 4 MiB chunks, 4 in flight.
  static constexpr int64_t kDefaultChunkBytes = int64_t{4} << 20;
  static constexpr int kDefaultChunkWindow = 4;
  absl::StatusOr<ItemOutput> ComputeChunked(
      const TensorView& input, const ActivationArg& activation, Mode mode = Mode::kForwardBackward,
      const std::optional<TensorView>& grad_output = std::nullopt,
      const std::optional<TensorView>& prelu_weight = std::nullopt,
      int64_t chunk_bytes = kDefaultChunkBytes) const;

  // Where ComputeChunkedInto writes: for each result the mode computes, a span of exactly
  // the input's byte size (row-major, the input's dtype); an empty span otherwise.
  struct ChunkedOutputs {
    absl::Span<char> output;
    absl::Span<char> grad_input;
  };

  // ComputeChunked without any whole-tensor buffer of its own: chunks are sent straight
  // from `input` / `grad_output` (the SDK copies nothing, except to gather the columns of
  // a softmax along dimension 0) and each result chunk is copied once, from the received
  // bytes into `outputs`. Memory besides the caller's: about `window` chunks in gRPC's
  // buffers on each side. Returns the PReLU grad_weight when the mode computes a gradient
  // of a PReLU, std::nullopt otherwise. Errors as ComputeChunked, plus InvalidArgument for
  // `outputs` spans of the wrong size. On error `outputs` hold partial results.
  absl::StatusOr<std::optional<Tensor>> ComputeChunkedInto(
      const TensorView& input, const ActivationArg& activation, Mode mode,
      const std::optional<TensorView>& grad_output,
      const std::optional<TensorView>& prelu_weight, const ChunkedOutputs& outputs,
      int64_t chunk_bytes = kDefaultChunkBytes, int window = kDefaultChunkWindow) const;

  // Every activation the server computes, with its parameters, and the server's version,
  // dtypes, SIMD target, threads and limits.
  absl::StatusOr<ServiceDescription> ListActivations() const;

  // grpc.health.v1.Health/Check for `service` ("" is the server as a whole). The server's
  // answer when it replies (kServing, kNotServing, ...); an error status when it cannot be
  // reached (UNAVAILABLE) or does not serve health checks (UNIMPLEMENTED), or NOT_FOUND
  // when it does not know `service`.
  absl::StatusOr<HealthStatus> Health(absl::string_view service = "") const;

 private:
  struct Stubs;

  // Where every method that talks to the server starts, before it looks at its arguments:
  // `setup_status_` when the options cannot be used (so every call returns the setup
  // error and none touches the network), else a context with the deadline and token and
  // the stubs to call through. The stubs are reachable only through here.
  absl::StatusOr<client_internal::CallStart> StartCall() const;

  ClientOptions options_;
  // Not OK when `options_` cannot be used; then every call returns it, and `channel_`
  // and `stubs_` may be null.
  absl::Status setup_status_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stubs> stubs_;
};

}  // namespace actserve

#endif  // ACTSERVE_CLIENT_INCLUDE_ACTSERVE_CLIENT_H_
