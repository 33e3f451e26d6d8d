#include "client/sdk/health_wire.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace actserve {
namespace client_internal {
namespace {

// Protobuf wire types (the low three bits of a field's tag).
constexpr uint64_t kWireVarint = 0;
constexpr uint64_t kWireFixed64 = 1;
constexpr uint64_t kWireLengthDelimited = 2;
constexpr uint64_t kWireFixed32 = 5;

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Reads a varint at `*pos`, advancing it. False when truncated or longer than 10 bytes.
bool ReadVarint(absl::string_view bytes, size_t* pos, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= bytes.size()) return false;
    const uint8_t byte = static_cast<uint8_t>(bytes[(*pos)++]);
    *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

std::string EncodeHealthCheckRequest(absl::string_view service) {
  std::string out;
  if (service.empty()) return out;
  AppendVarint((1 << 3) | kWireLengthDelimited, &out);
  AppendVarint(service.size(), &out);
  out.append(service.data(), service.size());
  return out;
}

absl::StatusOr<HealthStatus> DecodeHealthCheckResponse(absl::string_view bytes) {
  HealthStatus status = HealthStatus::kUnknown;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t field_start = pos;
    uint64_t tag;
    if (!ReadVarint(bytes, &pos, &tag)) {
      return absl::InvalidArgumentError(
          absl::StrCat("HealthCheckResponse: truncated tag at byte ", field_start));
    }
    const uint64_t field = tag >> 3;
    const uint64_t wire_type = tag & 7;
    uint64_t value = 0;
    bool ok = true;
    switch (wire_type) {
      case kWireVarint:
        ok = ReadVarint(bytes, &pos, &value);
        break;
      case kWireFixed64:
      case kWireFixed32: {
        const size_t width = wire_type == kWireFixed64 ? 8 : 4;
        ok = bytes.size() - pos >= width;
        pos += ok ? width : 0;
        break;
      }
      case kWireLengthDelimited:
        ok = ReadVarint(bytes, &pos, &value) && bytes.size() - pos >= value;
        pos += ok ? static_cast<size_t>(value) : 0;
        break;
      default:
        ok = false;
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("HealthCheckResponse: malformed field ", field, " at byte ", field_start));
    }
    if (field == 1 && wire_type == kWireVarint) {
      status = value <= 3 ? static_cast<HealthStatus>(value) : HealthStatus::kUnknown;
    }
  }
  return status;
}

}  // namespace client_internal
}  // namespace actserve
