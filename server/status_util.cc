// See status_util.h.
#include "server/status_util.h"

#include <string>
#include <utility>

namespace actserve {
namespace server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const int code = static_cast<int>(status.code());
  // Both enums are the canonical codes 0..16 (google.rpc.Code).
  const grpc::StatusCode grpc_code =
      (code > 0 && code <= grpc::StatusCode::UNAUTHENTICATED)
          ? static_cast<grpc::StatusCode>(code)
          : grpc::StatusCode::UNKNOWN;
  const absl::string_view message = status.message();
  if (message.size() <= kMaxStatusMessageBytes) {
    return grpc::Status(grpc_code, std::string(message));
  }
  constexpr absl::string_view kCut = "...";
  size_t keep = kMaxStatusMessageBytes - kCut.size();
  // Back up over UTF-8 continuation bytes (10xxxxxx) so no character is split.
  while (keep > 0 && (static_cast<unsigned char>(message[keep]) & 0xC0) == 0x80) --keep;
  std::string capped(message.substr(0, keep));
  capped.append(kCut.data(), kCut.size());
  return grpc::Status(grpc_code, std::move(capped));
}

}  // namespace server
}  // namespace actserve
