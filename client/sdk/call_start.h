// What one call of a Client starts from: the value of Client::StartCall, the single place
// where every method that talks to the server checks the Client's setup status and
// prepares its gRPC context (client_internal::PrepareContext: deadline and bearer token).
//
// A method gets the stubs only from a CallStart, so a Client whose options could not be
// used (an unreadable TLS file, a malformed token; its channel and stubs may be null)
// cannot reach the network, and no call can go out without the deadline or the token.
//
// Internal to the client library (not installed).
#ifndef ACTSERVE_CLIENT_SDK_CALL_START_H_
#define ACTSERVE_CLIENT_SDK_CALL_START_H_

#include <memory>

#include "actserve/v1/activation.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"

namespace actserve {
namespace client_internal {

// One call's context and the Client's stubs. Move-only. The context is on the heap so
// that it keeps its address when the CallStart moves: gRPC refers to it until the call
// ends, so the CallStart must outlive the call. The stubs belong to the Client and are
// valid while it lives; they are thread-safe, the context is not.
struct CallStart {
  std::unique_ptr<grpc::ClientContext> context;
  v1::ActivationService::Stub* service = nullptr;
  // For calls without a generated stub (grpc.health.v1.Health) and for the chunked
  // stream, which sends and receives raw bytes.
  grpc::GenericStub* generic = nullptr;
};

}  // namespace client_internal
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_SDK_CALL_START_H_
