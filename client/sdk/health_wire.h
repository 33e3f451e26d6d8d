// The two messages of grpc.health.v1.Health/Check, encoded and decoded by hand.
//
// Debian ships no generated code for the health service's client side, and the messages
// are tiny: HealthCheckRequest { string service = 1; } and HealthCheckResponse
// { ServingStatus status = 1; }. Internal to the client library (not installed).
#ifndef ACTSERVE_CLIENT_SDK_HEALTH_WIRE_H_
#define ACTSERVE_CLIENT_SDK_HEALTH_WIRE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "actserve/client.h"

namespace actserve {
namespace client_internal {

// The serialized HealthCheckRequest for `service`: empty for "" (proto3 leaves a default
// field out), else field 1 as a length-delimited string.
std::string EncodeHealthCheckRequest(absl::string_view service);

// The status in a serialized HealthCheckResponse: field 1, a varint; kUnknown when the
// field is absent (proto3's default). Fields it does not know are skipped. A status
// number outside 0..3 is kept as kUnknown. InvalidArgument when `bytes` is not a
// well-formed protobuf message (a truncated varint or field).
absl::StatusOr<HealthStatus> DecodeHealthCheckResponse(absl::string_view bytes);

}  // namespace client_internal
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_SDK_HEALTH_WIRE_H_
