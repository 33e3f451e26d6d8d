// The server's log: one line per event on stderr (see SetLogFd), with a timestamp and a
// level.
//
// Lines are bounded (kMaxLogLineBytes) and control characters are replaced, so a log line
// can never be split or flooded by what a client sent. Never log secrets (tokens, keys)
// or tensor data.
//
// Debug and info lines (the server writes one per call) are buffered and written by a
// background thread within about kLogFlushDelay, several lines per write(2): a write per
// line cost a small call several microseconds on the thread that served it. Warning and
// error lines are written at once, after any buffered lines, so order is kept and
// nothing important waits. FlushLog() writes what is buffered (the server's main calls
// it before exiting; it is also registered with atexit).
//
//   actserve::server::SetLogLevel(actserve::server::LogLevel::kInfo);
//   actserve::server::Log(actserve::server::LogLevel::kInfo, "listening on port 50051");
//   // 2024-05-01T12:00:00.123456Z I listening on port 50051
#ifndef ACTSERVE_SERVER_LOGGING_H_
#define ACTSERVE_SERVER_LOGGING_H_

#include <cstddef>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace actserve {
namespace server {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// The longest line written, in bytes, newline included; longer messages are cut and end
// in "...".
inline constexpr size_t kMaxLogLineBytes = 1024;

// The longest a debug or info line waits in the buffer before it is written.
inline constexpr absl::Duration kLogFlushDelay = absl::Milliseconds(10);

// Parses "debug", "info", "warning" (or "warn"), "error". Returns false, leaving `level`
// alone, for anything else.
bool ParseLogLevel(absl::string_view text, LogLevel* level);

// The least severe level that is written. Default kInfo. Thread-safe (atomic).
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// True when a message at `level` would be written; lets callers skip building messages.
bool LogEnabled(LogLevel level);

// Writes `message` as one line when `level` is enabled: debug and info lines within
// kLogFlushDelay, warning and error lines before returning. Thread-safe: lines are
// written whole, in the order of the Log calls, so lines from concurrent threads do not
// interleave.
void Log(LogLevel level, absl::string_view message);

// Writes every buffered line before returning. Thread-safe.
void FlushLog();

// Where lines are written from now on: an open file descriptor, which stays owned by the
// caller and must stay open while lines may be written. Default STDERR_FILENO (2).
// Buffered lines are written to the old descriptor first. Thread-safe.
void SetLogFd(int fd);

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_LOGGING_H_
