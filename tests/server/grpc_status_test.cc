// ToGrpcStatus: codes pass through, messages are capped without splitting a character.
#include "proto/grpc_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace actserve {
namespace wire {
namespace {

using ::testing::EndsWith;

TEST(ToGrpcStatusTest, OkIsOk) { EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok()); }

TEST(ToGrpcStatusTest, CodesAndMessagesPassThrough) {
  const grpc::Status invalid =
      ToGrpcStatus(absl::InvalidArgumentError("items[2].input: 12 bytes"));
  EXPECT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(invalid.error_message(), "items[2].input: 12 bytes");
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("x")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcStatus(absl::CancelledError("x")).error_code(),
            grpc::StatusCode::CANCELLED);
  EXPECT_EQ(ToGrpcStatus(absl::DeadlineExceededError("x")).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(ToGrpcStatus(absl::UnauthenticatedError("x")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ToGrpcStatus(absl::InternalError("x")).error_code(),
            grpc::StatusCode::INTERNAL);
}

TEST(ToGrpcStatusTest, UnknownCodeBecomesUnknown) {
  const absl::Status odd(static_cast<absl::StatusCode>(99), "odd");
  EXPECT_EQ(ToGrpcStatus(odd).error_code(), grpc::StatusCode::UNKNOWN);
}

TEST(ToGrpcStatusTest, LongMessagesAreCapped) {
  const grpc::Status capped =
      ToGrpcStatus(absl::InvalidArgumentError(std::string(5000, 'a')));
  EXPECT_EQ(capped.error_message().size(), kMaxStatusMessageBytes);
  EXPECT_THAT(capped.error_message(), EndsWith("..."));

  const std::string exact(kMaxStatusMessageBytes, 'b');
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError(exact)).error_message(), exact);
}

TEST(ToGrpcStatusTest, CapNeverSplitsAUtf8Character) {
  // "é" is two bytes (C3 A9); after a two-byte prefix, byte 1021 (where a cut to 1024
  // bytes with "..." would fall) is the second byte of one.
  std::string message = "xy";
  while (message.size() < 3000) message += "\xC3\xA9";
  const std::string capped =
      ToGrpcStatus(absl::InvalidArgumentError(message)).error_message();
  ASSERT_THAT(capped, EndsWith("..."));
  const std::string kept = capped.substr(0, capped.size() - 3);
  EXPECT_LT(capped.size(), kMaxStatusMessageBytes);
  // The kept text ends with a whole "é".
  EXPECT_EQ(static_cast<unsigned char>(kept.back()), 0xA9);
  EXPECT_EQ(kept.size() % 2, 0u);
}

}  // namespace
}  // namespace wire
}  // namespace actserve
