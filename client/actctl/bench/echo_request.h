// The requests of the bare gRPC echo (echo.proto) that `actctl bench` compares actserve
// with: sized so that the echo moves exactly the bytes actserve moves, request in and
// response out. The echo server itself (bench/service/echo_server.h) is part of the
// benchmark harness; this side is what a client needs to load one.
//
//   EchoSizes sizes = EchoSizesFor(compute_request.size(), compute_response_bytes);
//   std::string request = MakeEchoRequest(sizes, compute_request);
//
// Thread-safe: plain functions.
#ifndef ACTSERVE_CLIENT_ACTCTL_BENCH_ECHO_REQUEST_H_
#define ACTSERVE_CLIENT_ACTCTL_BENCH_ECHO_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace actserve {
namespace bench {

// The payload sizes for an echo whose messages are exactly `request_bytes` and
// `response_bytes` long on the wire (an EchoRequest's own fields take a few bytes).
struct EchoSizes {
  size_t request_payload = 0;
  size_t response_payload = 0;
};
EchoSizes EchoSizesFor(size_t request_bytes, size_t response_bytes);

// A serialized EchoRequest with `sizes.request_payload` bytes of payload (filled from
// `fill`, repeated) that asks for `sizes.response_payload` bytes back.
std::string MakeEchoRequest(const EchoSizes& sizes, const std::string& fill);

// `*out` = `payload` repeated and cut to `bytes` (zeros when `payload` is empty): the
// request's payload, and the echo's response to it.
void FillPayload(const std::string& payload, uint64_t bytes, std::string* out);

}  // namespace bench
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_ACTCTL_BENCH_ECHO_REQUEST_H_
