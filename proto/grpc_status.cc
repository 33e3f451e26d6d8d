// See grpc_status.h.
#include "proto/grpc_status.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace actserve {
namespace wire {
namespace {

// Both enums are the canonical codes 0..16 (google.rpc.Code).
bool IsCanonicalErrorCode(int code) {
  return code > 0 && code <= static_cast<int>(absl::StatusCode::kUnauthenticated);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const int code = static_cast<int>(status.code());
  const grpc::StatusCode grpc_code =
      IsCanonicalErrorCode(code) ? static_cast<grpc::StatusCode>(code) : grpc::StatusCode::UNKNOWN;
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

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int code = static_cast<int>(status.error_code());
  if (!IsCanonicalErrorCode(code)) {
    return absl::UnknownError(
        absl::StrCat("gRPC status code ", code, ": ", status.error_message()));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), status.error_message());
}

}  // namespace wire
}  // namespace actserve
