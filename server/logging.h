// The server's log: one line per event on stderr, with a timestamp and a level.
//
// Lines are bounded (kMaxLogLineBytes) and control characters are replaced, so a log line
// can never be split or flooded by what a client sent. Never log secrets (tokens, keys)
// or tensor data.
//
//   actserve::server::SetLogLevel(actserve::server::LogLevel::kInfo);
//   actserve::server::Log(actserve::server::LogLevel::kInfo, "listening on port 50051");
//   // 2024-05-01T12:00:00.123456Z I listening on port 50051
#ifndef ACTSERVE_SERVER_LOGGING_H_
#define ACTSERVE_SERVER_LOGGING_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace actserve {
namespace server {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// The longest line written, in bytes, newline included; longer messages are cut and end
// in "...".
inline constexpr size_t kMaxLogLineBytes = 1024;

// Parses "debug", "info", "warning" (or "warn"), "error". Returns false, leaving `level`
// alone, for anything else.
bool ParseLogLevel(absl::string_view text, LogLevel* level);

// The least severe level that is written. Default kInfo. Thread-safe (atomic).
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// True when a message at `level` would be written; lets callers skip building messages.
bool LogEnabled(LogLevel level);

// Writes `message` as one line when `level` is enabled. Thread-safe: each line goes out
// in a single write(2), so lines from concurrent threads do not interleave.
void Log(LogLevel level, absl::string_view message);

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_LOGGING_H_
