// The server log: levels filter, each event is one bounded line.
#include "server/logging.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "tests/server/test_server.h"

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
  FlushLog();
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.size(), kMaxLogLineBytes);
  EXPECT_EQ(out.find('\n'), out.size() - 1);  // client text cannot start a new line
  EXPECT_THAT(out, HasSubstr(" I first second "));
  EXPECT_THAT(out, EndsWith("...\n"));
}

TEST_F(LoggingTest, BufferedInfoLinesKeepTheirPlaceBeforeAWarning) {
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kInfo, "one");
  Log(LogLevel::kInfo, "two");
  // Written at once, after the info lines still buffered.
  Log(LogLevel::kWarning, "three");
  const std::string out = ::testing::internal::GetCapturedStderr();
  const std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_THAT(lines[0], EndsWith(" I one"));
  EXPECT_THAT(lines[1], EndsWith(" I two"));
  EXPECT_THAT(lines[2], EndsWith(" W three"));
}

TEST_F(LoggingTest, LinesStartWithATimestampInUtc) {
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kInfo, "stamped");
  FlushLog();
  const std::string out = ::testing::internal::GetCapturedStderr();
  // 2024-05-01T12:00:00.123456Z I stamped
  EXPECT_THAT(out, ::testing::MatchesRegex(
                       "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z "
                       "I stamped\n"));
}

TEST_F(LoggingTest, DisabledLevelWritesNothing) {
  SetLogLevel(LogLevel::kError);
  EXPECT_FALSE(LogEnabled(LogLevel::kWarning));
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kDebug, "nothing");
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), IsEmpty());
}

TEST_F(LoggingTest, EachCallIsOneLineInfoWhenOkWarningOtherwise) {
  testing::TestServer server = testing::StartTestServer();  // sets warning
  ASSERT_NE(server.server, nullptr);
  SetLogLevel(LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(testing::CallCompute(server, testing::ValidRequest()).ok());
  v1::ComputeRequest bad;
  *bad.add_items() = testing::ReluItem({2, 2}, {1, 2, 3});
  ASSERT_FALSE(testing::CallCompute(server, bad).ok());
  FlushLog();
  const std::string out = ::testing::internal::GetCapturedStderr();
  const std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_THAT(lines[0], HasSubstr(" I Compute OK batches=1 items=1 elements=5 in="));
  EXPECT_THAT(lines[0], HasSubstr("latency="));
  EXPECT_THAT(lines[0], HasSubstr("peer=ipv4:127.0.0.1:"));
  EXPECT_THAT(lines[1], HasSubstr(" W Compute INVALID_ARGUMENT batches=1 items=0 "));
  EXPECT_THAT(lines[1], HasSubstr(": items[0].input: 12 bytes of data"));
}

}  // namespace
}  // namespace server
}  // namespace actserve
