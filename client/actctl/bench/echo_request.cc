// See echo_request.h.
#include "client/actctl/bench/echo_request.h"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>

#include "actserve/bench/echo.pb.h"

namespace actserve {
namespace bench {
namespace {

size_t VarintSize(uint64_t value) {
  return static_cast<size_t>(google::protobuf::io::CodedOutputStream::VarintSize64(value));
}

}  // namespace

void FillPayload(const std::string& payload, uint64_t bytes, std::string* out) {
  out->clear();
  if (payload.empty()) {
    out->assign(bytes, '\0');
    return;
  }
  out->reserve(bytes);
  while (out->size() < bytes) {
    out->append(payload, 0, std::min<size_t>(payload.size(), bytes - out->size()));
  }
}

EchoSizes EchoSizesFor(size_t request_bytes, size_t response_bytes) {
  EchoSizes sizes;
  if (response_bytes >= 2) {
    size_t payload = response_bytes - 2;
    while (payload > 0 && 1 + VarintSize(payload) + payload > response_bytes) --payload;
    sizes.response_payload = payload;
  }
  const size_t response_field =
      sizes.response_payload > 0 ? 1 + VarintSize(sizes.response_payload) : 0;
  if (request_bytes >= 2 + response_field) {
    size_t payload = request_bytes - 2 - response_field;
    while (payload > 0 && 1 + VarintSize(payload) + payload + response_field > request_bytes) {
      --payload;
    }
    sizes.request_payload = payload;
  }
  return sizes;
}

std::string MakeEchoRequest(const EchoSizes& sizes, const std::string& fill) {
  EchoRequest request;
  FillPayload(fill, sizes.request_payload, request.mutable_payload());
  request.set_response_bytes(sizes.response_payload);
  return request.SerializeAsString();
}

}  // namespace bench
}  // namespace actserve
