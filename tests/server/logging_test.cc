// The server log: levels filter, each event is one bounded line.
#include "server/logging.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace actserve {
namespace server {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class LoggingTest : public ::testing::Test {
 protected:
  void TearDown() override { SetLogLevel(LogLevel::kInfo); }
};

TEST_F(LoggingTest, ParsesLevelNames) {
  LogLevel level = LogLevel::kError;
  ASSERT_TRUE(ParseLogLevel("debug", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  ASSERT_TRUE(ParseLogLevel("WARN", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
  ASSERT_TRUE(ParseLogLevel("error", &level));
  EXPECT_EQ(level, LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("loud", &level));
  EXPECT_EQ(level, LogLevel::kError);
}

TEST_F(LoggingTest, LevelsBelowTheThresholdAreDropped) {
  SetLogLevel(LogLevel::kWarning);
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kInfo, "quiet");
  Log(LogLevel::kError, "loud");
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(out, ::testing::Not(HasSubstr("quiet")));
  EXPECT_THAT(out, HasSubstr(" E loud\n"));
}

TEST_F(LoggingTest, OneBoundedLinePerEvent) {
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kInfo, "first\nsecond\r" + std::string(5000, 'x'));
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.size(), kMaxLogLineBytes);
  EXPECT_EQ(out.find('\n'), out.size() - 1);  // client text cannot start a new line
  EXPECT_THAT(out, HasSubstr(" I first second "));
  EXPECT_THAT(out, EndsWith("...\n"));
}

TEST_F(LoggingTest, DisabledLevelWritesNothing) {
  SetLogLevel(LogLevel::kError);
  EXPECT_FALSE(LogEnabled(LogLevel::kWarning));
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kDebug, "nothing");
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), IsEmpty());
}

}  // namespace
}  // namespace server
}  // namespace actserve
