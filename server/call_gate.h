// What every call passes before any work, whichever door it came in by (actserve.v1 and
// the Open Inference Protocol over gRPC, the protocol's HTTP/REST routes), and the trace
// it leaves: one set of admission rules and one log line and metrics record per call.
//
// Admission, in this order: draining (UNAVAILABLE once shutdown has begun),
// authentication (UNAUTHENTICATED without a valid bearer token, when a
// TokenAuthenticator is given), calls in flight (`max_inflight` unary calls of both
// protocols together and, counted apart, `max_streams` streams; RESOURCE_EXHAUSTED).
//
//   CallGate gate(options, &metrics, authenticator);
//   absl::Status admitted = gate.Admit(&authorization_header, CallKind::kUnary);
//   ...
//   gate.Record("ModelInfer", peer, start, stats, status);
//   if (admitted.ok()) gate.Release(CallKind::kUnary);
#ifndef ACTSERVE_SERVER_CALL_GATE_H_
#define ACTSERVE_SERVER_CALL_GATE_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/server_options.h"

namespace actserve {
namespace server {

// What one call did, for its log line and its metrics.
struct CallStats {
  int64_t batches = 0;
  int64_t items = 0;
  int64_t elements = 0;
  uint64_t received_bytes = 0;
  uint64_t sent_bytes = 0;
};

// How a call is counted: unary compute calls (Compute, ModelInfer, REST infer) against
// `max_inflight`, streams against `max_streams` (so that open streams cannot lock unary
// calls out), and the rest (listings, metadata) not at all.
enum class CallKind { kUncounted, kUnary, kStream };

// Thread-safe. `metrics` and `authenticator` (nullptr: no authentication) are borrowed
// and must outlive the gate.
class CallGate {
 public:
  CallGate(const ServerOptions& options, ServerMetrics* metrics,
           const TokenAuthenticator* authenticator);
  CallGate(const CallGate&) = delete;
  CallGate& operator=(const CallGate&) = delete;

  // Checks draining and the credentials (`authorization`: the value of the call's
  // "authorization" header or metadata, nullptr when it sent none) and takes a slot of
  // `kind`. An OK return must be matched by one Release of the same kind.
  absl::Status Admit(const absl::string_view* authorization, CallKind kind);
  void Release(CallKind kind);

  // From now on every Admit is refused with UNAVAILABLE; calls already admitted go on.
  // Idempotent.
  void StartDrain();
  bool draining() const;

  // Unary calls and streams currently admitted.
  int inflight() const;

  // Logs the call's one line (info when OK, warning otherwise: method, status, batches,
  // items, elements, bytes, latency, peer; never a header, a token or tensor data) and
  // records its metrics. `status` is the final one.
  void Record(absl::string_view method, absl::string_view peer, absl::Time start,
              const CallStats& stats, const absl::Status& status);

  ServerMetrics& metrics() { return metrics_; }

 private:
  const int max_inflight_;
  const int max_streams_;
  ServerMetrics& metrics_;
  const TokenAuthenticator* const authenticator_;

  mutable absl::Mutex mu_;
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;  // unary calls
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_CALL_GATE_H_
