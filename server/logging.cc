// See logging.h.
#include "server/logging.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace actserve {
namespace server {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_fd{STDERR_FILENO};

// Buffered lines beyond this are written by the caller itself, so that a stderr that
// stops draining holds the server back rather than growing its memory without bound.
constexpr size_t kMaxBufferedBytes = size_t{1} << 20;

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 'D';
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarning:
      return 'W';
    case LogLevel::kError:
      return 'E';
  }
  return '?';
}

void WriteAll(const std::string& bytes) {
  const int fd = g_fd.load(std::memory_order_relaxed);
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the log is gone; nothing sensible left to do
    written += static_cast<size_t>(n);
  }
}

// The buffer of lines not yet written and the thread that writes them. Never destroyed
// (the thread may still wait on it while the process exits).
class LogWriter {
 public:
  LogWriter() {
    std::thread([this] { Run(); }).detach();
    std::atexit([] { FlushLog(); });
  }

  // Appends `line` for the background thread to write. The thread is woken only by the
  // first line after it has written everything (absl::Mutex evaluates the condition
  // when this caller unlocks), not by every line.
  void Append(absl::string_view line) {
    {
      absl::MutexLock lock(&buffer_mu_);
      if (buffer_.size() < kMaxBufferedBytes) {
        buffer_.append(line.data(), line.size());
        return;
      }
    }
    Flush(line);
  }

  // Writes the buffered lines, then `line`, before returning; then, when `new_fd` is
  // given, sends later lines there.
  void Flush(absl::string_view line, std::optional<int> new_fd = std::nullopt) {
    absl::MutexLock write_lock(&write_mu_);
    {
      absl::MutexLock lock(&buffer_mu_);
      pending_.swap(buffer_);
    }
    pending_.append(line.data(), line.size());
    WriteAll(pending_);
    pending_.clear();
    if (new_fd.has_value()) g_fd.store(*new_fd, std::memory_order_relaxed);
  }

 private:
  void Run() {
    // Signals are for the threads that handle them (the server's main waits for them
    // with sigwait); this thread may start before they are blocked.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    for (;;) {
      {
        absl::MutexLock lock(&buffer_mu_);
        buffer_mu_.Await(absl::Condition(
            +[](std::string* buffer) { return !buffer->empty(); }, &buffer_));
      }
      // Lines arriving meanwhile join this write.
      absl::SleepFor(kLogFlushDelay);
      Flush({});
    }
  }

  absl::Mutex write_mu_;  // held while writing, so that lines go out in order
  std::string pending_ ABSL_GUARDED_BY(write_mu_);
  absl::Mutex buffer_mu_ ABSL_ACQUIRED_AFTER(write_mu_);
  std::string buffer_ ABSL_GUARDED_BY(buffer_mu_);
};

// Set once the writer exists: FlushLog then has something to flush.
std::atomic<LogWriter*> g_writer{nullptr};

LogWriter& Writer() {
  static LogWriter* const writer = [] {
    auto* created = new LogWriter();
    g_writer.store(created, std::memory_order_release);
    return created;
  }();
  return *writer;
}

// Appends "2024-05-01T12:00:00.123456Z " for `now`; the part up to the seconds is
// formatted once per second and thread (absl::FormatTime takes about a microsecond).
void AppendTimestamp(absl::Time now, std::string* out) {
  thread_local int64_t cached_second = INT64_MIN;
  thread_local std::string cached_prefix;
  const int64_t micros = absl::ToUnixMicros(now);
  int64_t second = micros / 1000000;
  int64_t micro = micros % 1000000;
  if (micro < 0) {  // before 1970
    micro += 1000000;
    --second;
  }
  if (second != cached_second) {
    cached_prefix =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S.", absl::FromUnixSeconds(second),
                         absl::UTCTimeZone());
    cached_second = second;
  }
  absl::StrAppend(out, cached_prefix, absl::Dec(micro, absl::kZeroPad6), "Z ");
}

}  // namespace

bool ParseLogLevel(absl::string_view text, LogLevel* level) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "debug") {
    *level = LogLevel::kDebug;
  } else if (lower == "info") {
    *level = LogLevel::kInfo;
  } else if (lower == "warning" || lower == "warn") {
    *level = LogLevel::kWarning;
  } else if (lower == "error") {
    *level = LogLevel::kError;
  } else {
    return false;
  }
  return true;
}

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel GetLogLevel() {
  return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed));
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void Log(LogLevel level, absl::string_view message) {
  if (!LogEnabled(level)) return;
  // Reused, so that a line costs no allocation.
  thread_local std::string line;
  line.clear();
  AppendTimestamp(absl::Now(), &line);
  line += LevelLetter(level);
  line += ' ';
  constexpr absl::string_view kCut = "...";
  const size_t budget = kMaxLogLineBytes - 1 - line.size();  // 1: the newline
  const bool cut = message.size() > budget;
  const absl::string_view kept = cut ? message.substr(0, budget - kCut.size()) : message;
  const size_t start = line.size();
  line.append(kept.data(), kept.size());
  for (size_t i = start; i < line.size(); ++i) {
    // Client-supplied text can reach a message; keep it on one line.
    const auto byte = static_cast<unsigned char>(line[i]);
    if (byte < 0x20 || byte == 0x7f) line[i] = ' ';
  }
  if (cut) line.append(kCut.data(), kCut.size());
  line += '\n';
  if (level >= LogLevel::kWarning) {
    Writer().Flush(line);
  } else {
    Writer().Append(line);
  }
}

void SetLogFd(int fd) {
  if (LogWriter* writer = g_writer.load(std::memory_order_acquire)) {
    writer->Flush({}, fd);
  } else {
    g_fd.store(fd, std::memory_order_relaxed);
  }
}

void FlushLog() {
  // Nothing logged yet: nothing to flush, and no writer thread to start (this also runs
  // at exit).
  if (LogWriter* writer = g_writer.load(std::memory_order_acquire)) writer->Flush({});
}

}  // namespace server
}  // namespace actserve
