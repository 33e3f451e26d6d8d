// How the SDK builds its gRPC channel from a target and ClientOptions: message size
// limits, the load-balancing policy and retry policy (as a service config), credentials.
//
// Internal to the client library (not installed); tests check the service config and that
// gRPC applies it.
#ifndef ACTSERVE_CLIENT_CHANNEL_H_
#define ACTSERVE_CLIENT_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "actserve/client.h"
#include "grpcpp/channel.h"

namespace actserve {
namespace client_internal {

// The channel's service config JSON: `loadBalancingConfig` with
// `options.load_balancing_policy` (left out when empty), and, when
// `options.max_attempts` > 1, a retry policy for UNAVAILABLE on both
// actserve.v1.ActivationService and grpc.health.v1.Health. "{}" when neither applies.
std::string ServiceConfigJson(const ClientOptions& options);

// A channel to `target` with `options`' message limits, service config and credentials
// (insecure when `options.credentials` is null). Connects lazily; never fails.
std::shared_ptr<grpc::Channel> MakeChannel(absl::string_view target, const ClientOptions& options);

}  // namespace client_internal
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_CHANNEL_H_
