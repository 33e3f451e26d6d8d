// Prometheus metrics of an actserve server (prometheus-cpp), and the HTTP exposer that
// serves them on their own port (GET /metrics).
//
// Series (names follow Prometheus conventions; a reader can sum or rate them):
//   actserve_requests_total{method, code}          calls finished, by gRPC status name;
//                                                  method: Compute, ComputeStream,
//                                                  ListActivations, and the Open Inference
//                                                  Protocol's ModelInfer, ModelMetadata,
//                                                  ServerMetadata
//   actserve_request_duration_seconds{method}      histogram of call latency (a stream:
//                                                  its whole life)
//   actserve_elements_total{activation, dtype}     input elements computed successfully
//   actserve_received_bytes_total{method}          request message bytes
//   actserve_sent_bytes_total{method}              response message bytes
//   actserve_inflight_calls                        compute calls and streams admitted
//   actserve_pool_queue_depth                      batches waiting for a compute worker
// The last two are read from their owners at each scrape, so they cannot drift.
//
//   ServerMetrics metrics([&] { return service.inflight(); }, [&] { return pool.queued(); });
//   absl::StatusOr<int> port = metrics.StartExposer("0.0.0.0:9464");
//   metrics.RecordCall("Compute", absl::StatusCode::kOk, absl::Milliseconds(3), 120, 80);
#ifndef ACTSERVE_SERVER_METRICS_H_
#define ACTSERVE_SERVER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "src/catalogue.h"
#include "src/dtype.h"

namespace actserve {
namespace server {

// Thread-safe: every Record* may be called concurrently, also during a scrape.
class ServerMetrics {
 public:
  // `inflight` and `queue_depth` are called at each scrape (on the exposer's thread);
  // they must be thread-safe and stay callable for the lifetime of this object.
  ServerMetrics(std::function<int()> inflight, std::function<size_t()> queue_depth);
  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // Serves GET /metrics on `address` ("host:port"; port 0 picks a free one) until this
  // object is destroyed, and returns the port bound. Unavailable when it cannot listen.
  // At most once.
  absl::StatusOr<int> StartExposer(const std::string& address);

  // One finished call of `method` ("Compute", "ComputeStream", "ListActivations").
  void RecordCall(absl::string_view method, absl::StatusCode code, absl::Duration latency,
                  uint64_t received_bytes, uint64_t sent_bytes);

  // `elements` input elements of `dtype` computed through `kind`.
  void RecordElements(ActivationKind kind, DType dtype, int64_t elements);

  // The value of actserve_requests_total{method, code} (for tests and logs).
  double RequestCount(absl::string_view method, absl::StatusCode code);

 private:
  struct MethodSeries;
  class SampledGauges;

  MethodSeries& Method(absl::string_view method);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Counter>& elements_;
  prometheus::Family<prometheus::Counter>& received_bytes_;
  prometheus::Family<prometheus::Counter>& sent_bytes_;
  std::vector<std::unique_ptr<MethodSeries>> methods_;  // fixed after construction
  // One counter per (activation, dtype), created on first use; index kind * kDTypes + dtype.
  std::vector<std::atomic<prometheus::Counter*>> element_counters_;
  std::shared_ptr<SampledGauges> gauges_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_METRICS_H_
