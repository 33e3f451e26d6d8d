// The one conversion between gRPC's status and Abseil's, in each direction: the server
// answers every call with ToGrpcStatus, the SDK (and actctl's load generator) turn every
// call's gRPC status into an absl::Status with FromGrpcStatus.
//
// Canonical codes are the same numbers in Abseil and gRPC (OK = 0 ... UNAUTHENTICATED =
// 16, google.rpc.Code), so a code passes through unchanged; a number outside that range
// becomes UNKNOWN. On the way out the message is capped at kMaxStatusMessageBytes: a
// message that names a client's input could otherwise grow without bound and be sent
// back on every error.
//
//   reactor->Finish(actserve::wire::ToGrpcStatus(engine.Plan(items).status()));
//   absl::Status s = actserve::wire::FromGrpcStatus(stub->Compute(&context, request, &reply));
//
// Here rather than in src/ so that the core knows nothing of gRPC; its own library
// (actserve::grpc_status) so that the server and the SDK share it without either linking
// the other.
#ifndef ACTSERVE_PROTO_GRPC_STATUS_H_
#define ACTSERVE_PROTO_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <cstddef>

#include "absl/status/status.h"

namespace actserve {
namespace wire {

// The longest status message sent to a client, in bytes; longer ones are cut at a UTF-8
// character boundary and end in "...".
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// `status` as a grpc::Status: same code (an unknown code becomes UNKNOWN), message capped
// at kMaxStatusMessageBytes. OK maps to grpc::Status::OK. Thread-safe.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The absl::Status with the same canonical code and message; a code number outside
// 1..16 (a broken peer) becomes UNKNOWN with the number in the message. An OK status
// keeps no message. Thread-safe.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace wire
}  // namespace actserve

#endif  // ACTSERVE_PROTO_GRPC_STATUS_H_
