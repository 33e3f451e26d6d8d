// How the SDK builds its gRPC channel from a target and ClientOptions: message size
// limits, the load-balancing policy and retry policy (as a service config), credentials
// (plaintext, TLS, mutual TLS), and the bearer token's metadata.
//
// Internal to the client library (not installed); tests check the service config, the
// option checks, and that gRPC applies them.
#ifndef ACTSERVE_CLIENT_SDK_CHANNEL_H_
#define ACTSERVE_CLIENT_SDK_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "actserve/client.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"

namespace actserve {
namespace client_internal {

// The channel's service config JSON: `loadBalancingConfig` with
// `options.load_balancing_policy` (left out when empty), `healthCheckConfig` for the
// server as a whole (service "") when `options.health_checked_balancing`, and, when
// `options.max_attempts` > 1 or `options.wait_for_ready`, a method config for both
// actserve.v1.ActivationService and grpc.health.v1.Health with `waitForReady` (when set)
// and a retry policy for UNAVAILABLE and CANCELLED with the options' backoff (when
// max_attempts > 1).
// "{}" when nothing applies.
std::string ServiceConfigJson(const ClientOptions& options);

// `duration` as the service config's JSON spells it: decimal seconds with at most nine
// fractional digits and no trailing zeros, then "s" ("0.1s", "1s", "0.05s"). Negative
// durations are "0s".
std::string JsonDuration(absl::Duration duration);

// The whole contents of the file at `path`. NotFound / PermissionDenied / ... (from
// errno) with a message that starts with `what` and names the path when it cannot be read.
absl::StatusOr<std::string> ReadFileContents(absl::string_view path, absl::string_view what);

// OK when `token` can be sent as "authorization: Bearer <token>" (empty, or visible ASCII
// only); InvalidArgument otherwise, with a message that does not contain the token.
absl::Status CheckToken(absl::string_view token);

// The channel credentials `options` ask for: `options.credentials` when set, TLS from
// `options.tls` (reading its files) when set, else insecure. InvalidArgument when both
// are set, a PEM item is given twice, or a certificate comes without its key (or the
// reverse); NotFound / PermissionDenied naming a file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const ClientOptions& options);

// A channel to `target` with `options`' message limits, service config, credentials
// (MakeCredentials) and TLS server name. Connects lazily, so unreachable servers are not
// an error here; MakeCredentials' errors and a bad `options.token` (CheckToken) are.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(absl::string_view target,
                                                           const ClientOptions& options);

// Sets what every call of a client carries: the deadline from `options.deadline` (none
// when infinite) and, when `options.token` is set, the `authorization: Bearer` metadata.
// Called only from Client::StartCall (client/sdk/call_start.h), where every call path
// (unary, streaming, chunked, health) starts.
void PrepareContext(const ClientOptions& options, grpc::ClientContext* context);

}  // namespace client_internal
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_SDK_CHANNEL_H_
