// See metrics.h.
#include "server/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"

namespace actserve {
namespace server {
namespace {

// actserve.v1's methods, then the Open Inference Protocol's over gRPC and over HTTP/REST.
constexpr absl::string_view kMethods[] = {"Compute",    "ComputeStream", "ListActivations",
                                          "ModelInfer", "ModelMetadata", "ServerMetadata",
                                          "REST ModelInfer", "REST ModelMetadata",
                                          "REST ServerMetadata"};

// The dtype enum's values 0..4 index the per-activation counters.
constexpr size_t kDTypes = 5;

// absl::StatusCode's canonical values are 0..16 (kOk .. kUnauthenticated), and index a
// method's per-code counters; any other value shares the series of kUnknown's name.
constexpr size_t kStatusCodes = 17;

// Call latency buckets, in seconds: 100 us (a tiny inline batch) to a minute (a stream
// or a batch of hundreds of MiB).
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const kBuckets = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   25,    60};
  return *kBuckets;
}

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  family.metric.emplace_back();
  family.metric.back().gauge.value = value;
  return family;
}

}  // namespace

struct ServerMetrics::MethodSeries {
  std::string name;
  prometheus::Histogram* latency = nullptr;
  prometheus::Counter* received_bytes = nullptr;
  prometheus::Counter* sent_bytes = nullptr;
  // actserve_requests_total{method, code}, created on first use (a series appears once
  // its code has occurred, as with Family::Add per call) and then found without
  // Family::Add, which builds a label map, hashes it and takes the family's lock: a
  // cost every call paid.
  std::array<std::atomic<prometheus::Counter*>, kStatusCodes> requests{};
};

// Gauges whose truth lives elsewhere, read when Prometheus scrapes.
class ServerMetrics::SampledGauges final : public prometheus::Collectable {
 public:
  SampledGauges(std::function<int()> inflight, std::function<size_t()> queue_depth)
      : inflight_(std::move(inflight)), queue_depth_(std::move(queue_depth)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families;
    families.push_back(Gauge("actserve_inflight_calls",
                             "Compute and ComputeStream calls in progress",
                             static_cast<double>(inflight_())));
    families.push_back(Gauge("actserve_pool_queue_depth",
                             "batches waiting for a compute worker",
                             static_cast<double>(queue_depth_())));
    return families;
  }

 private:
  const std::function<int()> inflight_;
  const std::function<size_t()> queue_depth_;
};

ServerMetrics::ServerMetrics(std::function<int()> inflight,
                             std::function<size_t()> queue_depth)
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("actserve_requests_total")
                    .Help("calls finished, by method and gRPC status code")
                    .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("actserve_request_duration_seconds")
                   .Help("call latency in seconds, from admission to status")
                   .Register(*registry_)),
      elements_(prometheus::BuildCounter()
                    .Name("actserve_elements_total")
                    .Help("input elements computed, by activation and dtype")
                    .Register(*registry_)),
      received_bytes_(prometheus::BuildCounter()
                          .Name("actserve_received_bytes_total")
                          .Help("request message bytes received, by method")
                          .Register(*registry_)),
      sent_bytes_(prometheus::BuildCounter()
                      .Name("actserve_sent_bytes_total")
                      .Help("response message bytes sent, by method")
                      .Register(*registry_)),
      element_counters_(Catalogue().size() * kDTypes),
      gauges_(std::make_shared<SampledGauges>(std::move(inflight),
                                              std::move(queue_depth))) {
  for (absl::string_view name : kMethods) {
    auto series = std::make_unique<MethodSeries>();
    series->name = std::string(name);
    series->latency = &latency_.Add({{"method", series->name}}, LatencyBuckets());
    series->received_bytes = &received_bytes_.Add({{"method", series->name}});
    series->sent_bytes = &sent_bytes_.Add({{"method", series->name}});
    methods_.push_back(std::move(series));
  }
}

ServerMetrics::~ServerMetrics() = default;

absl::StatusOr<int> ServerMetrics::StartExposer(const std::string& address) {
  if (exposer_ != nullptr) return absl::FailedPreconditionError("exposer already started");
  try {
    // civetweb's options: one listener, two threads (scrapes are rare and cheap).
    auto exposer = std::make_unique<prometheus::Exposer>(address, 2);
    exposer->RegisterCollectable(registry_);
    exposer->RegisterCollectable(gauges_);
    const std::vector<int> ports = exposer->GetListeningPorts();
    if (ports.empty()) {
      return absl::UnavailableError(
          absl::StrCat("metrics: no port bound for '", address, "'"));
    }
    exposer_ = std::move(exposer);
    return ports.front();
  } catch (const std::exception& e) {
    // prometheus-cpp reports a failed bind by throwing; it stops here.
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on '", address, "': ", e.what()));
  }
}

ServerMetrics::MethodSeries& ServerMetrics::Method(absl::string_view method) {
  for (const auto& series : methods_) {
    if (series->name == method) return *series;
  }
  return *methods_.front();  // unreachable for the service's own method names
}

void ServerMetrics::RecordCall(absl::string_view method, absl::StatusCode code,
                               absl::Duration latency, uint64_t received_bytes,
                               uint64_t sent_bytes) {
  MethodSeries& series = Method(method);
  const size_t code_index =
      static_cast<size_t>(code) < kStatusCodes ? static_cast<size_t>(code)
                                               : static_cast<size_t>(absl::StatusCode::kUnknown);
  std::atomic<prometheus::Counter*>& slot = series.requests[code_index];
  prometheus::Counter* requests = slot.load(std::memory_order_acquire);
  if (requests == nullptr) {
    // Two threads may race here; Family::Add (thread-safe) gives both the same series.
    requests = &requests_.Add(
        {{"method", series.name},
         {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(code_index))}});
    slot.store(requests, std::memory_order_release);
  }
  requests->Increment();
  series.latency->Observe(absl::ToDoubleSeconds(latency));
  series.received_bytes->Increment(static_cast<double>(received_bytes));
  series.sent_bytes->Increment(static_cast<double>(sent_bytes));
}

void ServerMetrics::RecordElements(ActivationKind kind, DType dtype, int64_t elements) {
  const size_t kind_index = static_cast<size_t>(kind);
  const size_t dtype_index = static_cast<size_t>(dtype);
  if (kind_index >= Catalogue().size() || dtype_index >= kDTypes) return;
  std::atomic<prometheus::Counter*>& slot =
      element_counters_[kind_index * kDTypes + dtype_index];
  prometheus::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Two threads may race here; Add gives both the same series.
    counter = &elements_.Add({{"activation", std::string(Catalogue()[kind_index].name)},
                              {"dtype", std::string(DTypeName(dtype))}});
    slot.store(counter, std::memory_order_release);
  }
  counter->Increment(static_cast<double>(elements));
}

double ServerMetrics::RequestCount(absl::string_view method, absl::StatusCode code) {
  return requests_
      .Add({{"method", std::string(method)}, {"code", absl::StatusCodeToString(code)}})
      .Value();
}

}  // namespace server
}  // namespace actserve
