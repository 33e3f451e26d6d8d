// The one place where the core's absl::Status becomes a gRPC status.
//
// Canonical codes are the same numbers in Abseil and gRPC, so the code passes through
// unchanged. The message is capped at kMaxStatusMessageBytes: a message that names a
// client's input could otherwise grow without bound and be sent back on every error.
//
//   reactor->Finish(actserve::server::ToGrpcStatus(engine.Plan(items).status()));
#ifndef ACTSERVE_SERVER_STATUS_UTIL_H_
#define ACTSERVE_SERVER_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include <cstddef>

#include "absl/status/status.h"

namespace actserve {
namespace server {

// The longest status message sent to a client, in bytes; longer ones are cut at a UTF-8
// character boundary and end in "...".
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// `status` as a grpc::Status: same code (an unknown code becomes UNKNOWN), message capped
// at kMaxStatusMessageBytes. OK maps to grpc::Status::OK. Thread-safe.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_STATUS_UTIL_H_
