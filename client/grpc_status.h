// The SDK's one conversion from a gRPC status to an absl::Status.
//
// Internal to the client library (not installed): the public API speaks absl::Status
// only.
#ifndef ACTSERVE_CLIENT_GRPC_STATUS_H_
#define ACTSERVE_CLIENT_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace actserve {
namespace client_internal {

// The absl::Status with the same canonical code and message. gRPC and Abseil share the
// canonical codes (OK = 0 ... UNAUTHENTICATED = 16); a number outside that range (a
// broken peer) becomes UNKNOWN with the number in the message. An OK status keeps no
// message. Thread-safe.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace client_internal
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_GRPC_STATUS_H_
