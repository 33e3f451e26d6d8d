#include "server/call_gate.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/logging.h"

namespace actserve {
namespace server {

CallGate::CallGate(const ServerOptions& options, ServerMetrics* metrics,
                   const TokenAuthenticator* authenticator)
    : max_inflight_(options.max_inflight),
      max_streams_(options.max_streams),
      metrics_(*metrics),
      authenticator_(authenticator) {}

absl::Status CallGate::Admit(const absl::string_view* authorization, CallKind kind) {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      return absl::UnavailableError(
          "the server is shutting down; retry on another instance");
    }
  }
  if (authenticator_ != nullptr) {
    absl::Status authorized = authenticator_->Authorize(authorization);
    if (!authorized.ok()) return authorized;
  }
  if (kind == CallKind::kUncounted) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  // Again, under the lock that takes the slot: a drain that began during the token check
  // must not see zero calls in flight and then have one start.
  if (draining_) {
    return absl::UnavailableError("the server is shutting down; retry on another instance");
  }
  const bool stream = kind == CallKind::kStream;
  int& count = stream ? streams_ : inflight_;
  const int limit = stream ? max_streams_ : max_inflight_;
  if (limit > 0 && count >= limit) {
    return absl::ResourceExhaustedError(
        stream ? absl::StrCat("too many streams open: ", limit,
                              " (limit --max_streams); retry later")
               : absl::StrCat("too many calls in flight: ", limit,
                              " (limit --max_inflight); retry later"));
  }
  ++count;
  return absl::OkStatus();
}

void CallGate::Release(CallKind kind) {
  absl::MutexLock lock(&mu_);
  if (kind == CallKind::kStream) {
    --streams_;
  } else if (kind == CallKind::kUnary) {
    --inflight_;
  }
}

void CallGate::StartDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool CallGate::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

int CallGate::inflight() const {
  absl::MutexLock lock(&mu_);
  return inflight_ + streams_;
}

void CallGate::Record(absl::string_view method, absl::string_view peer, absl::Time start,
                      const CallStats& stats, const absl::Status& status) {
  const absl::Duration latency = absl::Now() - start;
  metrics_.RecordCall(method, status.code(), latency, stats.received_bytes,
                      stats.sent_bytes);
  const LogLevel level = status.ok() ? LogLevel::kInfo : LogLevel::kWarning;
  if (!LogEnabled(level)) return;
  // Never a header or metadata (they carry the token) and never tensor data; the status
  // message may quote the client's input, which Log bounds and keeps on one line.
  // StrCat rather than StrFormat: this runs for every call, and takes half the time.
  const int64_t latency_us = absl::ToInt64Microseconds(latency);
  std::string line = absl::StrCat(
      method, " ", absl::StatusCodeToString(status.code()), " batches=", stats.batches,
      " items=", stats.items, " elements=", stats.elements, " in=", stats.received_bytes,
      "B out=", stats.sent_bytes, "B latency=", latency_us / 1000, ".",
      absl::Dec(latency_us % 1000, absl::kZeroPad3), "ms peer=", peer);
  if (!status.ok()) absl::StrAppend(&line, ": ", status.message());
  Log(level, line);
}

}  // namespace server
}  // namespace actserve
