#include "client/sdk/health_wire.h"

#include <string>

#include "gtest/gtest.h"

namespace actserve {
namespace client_internal {
namespace {

TEST(HealthWireTest, EncodesTheServiceName) {
  EXPECT_EQ(EncodeHealthCheckRequest(""), "");
  // Field 1, wire type 2: tag 0x0A, then the length and the bytes.
  EXPECT_EQ(EncodeHealthCheckRequest("actserve.v1.ActivationService"),
            std::string("\x0A\x1D") + "actserve.v1.ActivationService");
}

TEST(HealthWireTest, DecodesTheStatus) {
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x01", 2)), HealthStatus::kServing);
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x02", 2)), HealthStatus::kNotServing);
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x03", 2)), HealthStatus::kServiceUnknown);
  // proto3 leaves the default (UNKNOWN = 0) out: an empty message.
  EXPECT_EQ(*DecodeHealthCheckResponse(""), HealthStatus::kUnknown);
  // A number the enum does not define.
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x07", 2)), HealthStatus::kUnknown);
}

TEST(HealthWireTest, SkipsUnknownFields) {
  // Field 2 (a string "ab"), field 3 (fixed32), then status = SERVING.
  const std::string bytes(
      "\x12\x02"
      "ab"
      "\x1D\x01\x02\x03\x04"
      "\x08\x01",
      11);
  EXPECT_EQ(*DecodeHealthCheckResponse(bytes), HealthStatus::kServing);
}

TEST(HealthWireTest, RejectsMalformedMessages) {
  EXPECT_EQ(DecodeHealthCheckResponse(std::string("\x08", 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeHealthCheckResponse(std::string("\x08\x80", 2)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeHealthCheckResponse(std::string("\x12\x05"
                                                  "ab",
                                                  4))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace client_internal
}  // namespace actserve
