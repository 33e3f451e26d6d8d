// See service_bench.h.
#include "client/actctl/bench/service_bench.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "actserve/batch.h"
#include "actserve/tensor.h"
#include "actserve/v1/activation.pb.h"
#include "inference/open_inference_grpc.pb.h"
#include "client/actctl/bench/echo_request.h"
#include "client/actctl/bench/load.h"
#include "client/sdk/batch_internal.h"
#include "proto/grpc_status.h"

namespace actserve {
namespace bench {
namespace {

constexpr char kComputeMethod[] = "/actserve.v1.ActivationService/Compute";
constexpr char kComputeStreamMethod[] = "/actserve.v1.ActivationService/ComputeStream";
constexpr char kModelInferMethod[] = "/inference.GRPCInferenceService/ModelInfer";
constexpr char kEchoMethod[] = "/actserve.bench.Echo/Echo";
constexpr char kEchoStreamMethod[] = "/actserve.bench.Echo/EchoStream";

std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const std::vector<std::string>& targets) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (const std::string& target : targets) {
    channels.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                                 BenchChannelArguments()));
  }
  return channels;
}

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// A serialized ComputeRequest: `payload_bytes` of float32 input (and as much grad_output
// in forward_backward mode) through `activation`, as `items` items of equal size.
absl::StatusOr<std::string> MakeComputeRequest(size_t payload_bytes, int items, Mode mode,
                                               const std::string& activation) {
  const size_t per_item = std::max<size_t>(1, payload_bytes / sizeof(float) / items);
  const size_t elements = per_item * static_cast<size_t>(items);
  std::vector<float> x(elements), dy(elements);
  uint32_t state = 12345;
  for (size_t i = 0; i < elements; ++i) {
    state = state * 1664525u + 1013904223u;
    x[i] = static_cast<float>(state >> 8) / static_cast<float>(1u << 24) * 8.0f - 4.0f;
    dy[i] = 1.0f - x[i] / 8.0f;
  }
  const int64_t shape[] = {static_cast<int64_t>(per_item)};
  Batch batch;
  for (int i = 0; i < items; ++i) {
    const size_t first = static_cast<size_t>(i) * per_item;
    std::optional<TensorView> grad_output;
    if (ComputesGradient(mode)) {
      grad_output = MakeTensorView(absl::MakeConstSpan(dy).subspan(first, per_item), shape);
    }
    batch.Add(MakeTensorView(absl::MakeConstSpan(x).subspan(first, per_item), shape),
              activation, mode, grad_output);
  }
  if (!batch.status().ok()) return batch.status();
  return client_internal::BatchWire::Request(batch).SerializeAsString();
}

// A serialized ModelInferRequest of the same tensors as MakeComputeRequest's one item:
// x (and dy in forward_backward) as raw_input_contents, outputs y (and dx).
absl::StatusOr<std::string> MakeModelInferRequest(size_t payload_bytes, Mode mode,
                                                  const std::string& activation) {
  if (activation.find('(') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the Open Inference Protocol rows take an activation without parameters, got '",
        activation, "'"));
  }
  const size_t elements = std::max<size_t>(1, payload_bytes / sizeof(float));
  std::vector<float> x(elements), dy(elements);
  uint32_t state = 12345;  // the values of MakeComputeRequest
  for (size_t i = 0; i < elements; ++i) {
    state = state * 1664525u + 1013904223u;
    x[i] = static_cast<float>(state >> 8) / static_cast<float>(1u << 24) * 8.0f - 4.0f;
    dy[i] = 1.0f - x[i] / 8.0f;
  }
  inference::ModelInferRequest request;
  request.set_model_name(activation);
  const auto add = [&](const char* name, const std::vector<float>& values) {
    inference::ModelInferRequest::InferInputTensor* input = request.add_inputs();
    input->set_name(name);
    input->set_datatype("FP32");
    input->add_shape(static_cast<int64_t>(elements));
    request.add_raw_input_contents(reinterpret_cast<const char*>(values.data()),
                                   values.size() * sizeof(float));
  };
  add("x", x);
  request.add_outputs()->set_name("y");
  if (ComputesGradient(mode)) {
    add("dy", dy);
    request.add_outputs()->set_name("dx");
  }
  return request.SerializeAsString();
}

// The size of the response to one call of `method` with `request`.
absl::StatusOr<size_t> ResponseSize(const std::shared_ptr<grpc::Channel>& channel,
                                    const std::string& method, const grpc::ByteBuffer& request) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) {
    const absl::Status failed = wire::FromGrpcStatus(status);
    return absl::Status(failed.code(), absl::StrCat(method, ": ", failed.message()));
  }
  return response.Length();
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

struct Rounds {
  std::vector<double> mb_s, p50_us, p99_us, cpu_us_per_call;
  int64_t calls = 0;
  int64_t faults = 0;
  bool faults_measured = false;
  ServerFigures Figures() const {
    return {Median(mb_s), Median(p50_us), Median(p99_us),
            faults_measured && calls > 0
                ? static_cast<double>(faults) / static_cast<double>(calls)
                : -1.0};
  }
};

// One server as the benchmark sees it: where to send, which methods, what to send.
struct Contender {
  std::string name;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::string unary_method;
  std::string stream_method;
  grpc::ByteBuffer request;
  size_t expected_response_bytes = 0;
  // The server's process id, for its page faults; 0: not measured.
  int pid = 0;
  Rounds rounds;
};

std::string Ratio(double a, double b) {
  return b > 0 ? absl::StrFormat("%.2f", a / b) : std::string("-");
}

std::string Faults(double per_call) {
  return per_call < 0 ? std::string("-") : absl::StrFormat("%.2f", per_call);
}

// Runs `load` and, when `pid` is set, adds the page faults of that process during the run
// to `faults`.
template <typename Load>
absl::StatusOr<LoadResult> CountingFaults(int pid, int64_t* faults, Load load) {
  absl::StatusOr<int64_t> before = pid > 0 ? MinorPageFaults(pid) : absl::StatusOr<int64_t>(0);
  if (!before.ok()) return before.status();
  absl::StatusOr<LoadResult> result = load();
  if (!result.ok()) return result;
  absl::StatusOr<int64_t> after = pid > 0 ? MinorPageFaults(pid) : absl::StatusOr<int64_t>(0);
  if (!after.ok()) return after.status();
  *faults += *after - *before;
  return result;
}

}  // namespace

std::string FormatServiceTable(const std::vector<ServiceBenchRow>& rows) {
  const bool with_default_echo =
      std::any_of(rows.begin(), rows.end(),
                  [](const ServiceBenchRow& row) { return row.echo_default.mb_s > 0; });
  std::string text = absl::StrFormat(
      "%-6s %-5s %9s %5s %-16s %2s | %9s %9s %5s | %9s %9s %5s | %9s %9s | %9s %9s", "rpc",
      "act", "bytes", "items", "mode", "c", "act MB/s", "echo MB/s", "ratio", "act p50", "echo p50", "ratio",
      "act p99", "echo p99", "act flt/c", "echo flt/c");
  if (with_default_echo) {
    absl::StrAppend(&text, absl::StrFormat(" | %9s %9s", "dflt MB/s", "dflt p50"));
  }
  absl::StrAppend(&text, "\n");
  for (const ServiceBenchRow& row : rows) {
    absl::StrAppend(
        &text,
        absl::StrFormat("%-6s %-5s %9d %5d %-16s %2d | %9.1f %9.1f %5s | %9.0f %9.0f %5s | "
                        "%9.0f %9.0f | %9s %9s",
                        row.rpc, row.activation, row.payload_bytes, row.items, row.mode,
                        row.concurrency,
                        row.actserve.mb_s, row.echo.mb_s, Ratio(row.actserve.mb_s, row.echo.mb_s),
                        row.actserve.p50_us, row.echo.p50_us,
                        Ratio(row.actserve.p50_us, row.echo.p50_us), row.actserve.p99_us,
                        row.echo.p99_us, Faults(row.actserve.faults_per_call),
                        Faults(row.echo.faults_per_call)));
    if (with_default_echo) {
      absl::StrAppend(&text, absl::StrFormat(" | %9.1f %9.0f", row.echo_default.mb_s,
                                             row.echo_default.p50_us));
    }
    absl::StrAppend(&text, "\n");
  }
  absl::StrAppend(&text,
                  "ratio: actserve/echo (throughput: >= 0.9 is the target; p50: <= 1.1 is the "
                  "target at 1 KiB). MB/s: 10^6 bytes of input tensor per second; latencies "
                  "in us; medians over interleaved rounds. flt/c: the server process's minor "
                  "page faults per call over all rounds ('-': not its own process here).\n");
  return text;
}

absl::StatusOr<std::vector<ServiceBenchRow>> RunServiceBench(const ServiceBenchOptions& options,
                                                             std::FILE* out) {
  if (options.targets.empty()) {
    return absl::InvalidArgumentError("give the actserve servers to load (--target)");
  }
  const std::vector<std::string>& actserve_targets = options.targets;
  const std::vector<std::string>& echo_targets = options.echo_targets;
  const std::vector<std::string>& echo_default_targets = options.echo_default_targets;
  std::fprintf(out, "actserve: %s%s\necho (actserve settings): %s\necho (gRPC defaults): %s\n",
               absl::StrJoin(actserve_targets, ",").c_str(),
               options.servers_in_process
                   ? " (in this process: a profiling aid, not the binary users run)"
                   : "",
               echo_targets.empty() ? "not measured" : absl::StrJoin(echo_targets, ",").c_str(),
               echo_default_targets.empty() ? "not measured"
                                            : absl::StrJoin(echo_default_targets, ",").c_str());

  // actserve first; then the echo with actserve's settings and the echo with gRPC's
  // defaults, each when given. Without an echo the rows have actserve's figures only.
  std::vector<Contender> contenders(1);
  contenders[0].name = "actserve";
  contenders[0].channels = MakeChannels(actserve_targets);
  contenders[0].unary_method = kComputeMethod;
  contenders[0].stream_method = kComputeStreamMethod;
  contenders[0].pid = options.actserve_pid;
  if (!echo_targets.empty()) {
    Contender echo;
    echo.name = "echo";
    echo.pid = options.echo_pid;
    echo.channels = MakeChannels(echo_targets);
    contenders.push_back(std::move(echo));
    if (!echo_default_targets.empty()) {
      Contender echo_default;
      echo_default.name = "echo_default";
      echo_default.channels = MakeChannels(echo_default_targets);
      contenders.push_back(std::move(echo_default));
    }
  }
  for (size_t i = 1; i < contenders.size(); ++i) {
    contenders[i].unary_method = kEchoMethod;
    contenders[i].stream_method = kEchoStreamMethod;
  }

  struct Config {
    std::string activation;
    std::string rpc;
    size_t payload_bytes;
    int items;
  };
  std::vector<Config> configs;
  for (const std::string& activation : options.activations) {
    for (size_t bytes : options.payload_bytes) {
      for (int items : options.items_per_request) {
        configs.push_back({activation, "unary", bytes, items});
      }
      if (options.oip) configs.push_back({activation, "oip", bytes, 1});
    }
    if (options.stream_chunk_bytes > 0) {
      configs.push_back({activation, "stream", options.stream_chunk_bytes, 1});
    }
  }

  std::vector<ServiceBenchRow> rows;
  for (const Config& config : configs) {
    for (const std::string& mode_name : options.modes) {
      const Mode mode = mode_name == "forward" ? Mode::kForward : Mode::kForwardBackward;
      const bool oip = config.rpc == "oip";
      absl::StatusOr<std::string> request =
          oip ? MakeModelInferRequest(config.payload_bytes, mode, config.activation)
              : MakeComputeRequest(config.payload_bytes, config.items, mode, config.activation);
      if (!request.ok()) return request.status();
      contenders[0].request = ToByteBuffer(*request);
      contenders[0].unary_method = oip ? kModelInferMethod : kComputeMethod;
      // The size actserve answers with, which the echo servers are asked to return; this
      // call also warms the connection up.
      absl::StatusOr<size_t> response_bytes = ResponseSize(
          contenders[0].channels[0], contenders[0].unary_method, contenders[0].request);
      if (!response_bytes.ok()) return response_bytes.status();
      contenders[0].expected_response_bytes = *response_bytes;
      const EchoSizes echo_sizes = EchoSizesFor(request->size(), *response_bytes);
      const std::string echo_request = MakeEchoRequest(echo_sizes, *request);
      for (size_t i = 1; i < contenders.size(); ++i) {
        contenders[i].request = ToByteBuffer(echo_request);
        absl::StatusOr<size_t> echo_bytes =
            ResponseSize(contenders[i].channels[0], kEchoMethod, contenders[i].request);
        if (!echo_bytes.ok()) return echo_bytes.status();
        contenders[i].expected_response_bytes = *echo_bytes;
      }

      for (int concurrency : options.concurrency) {
        for (Contender& contender : contenders) contender.rounds = Rounds();
        LoadOptions load;
        load.concurrency = concurrency;
        load.min_time = options.min_time;
        load.min_calls = options.min_calls;
        load.stream_messages = options.stream_messages;
        for (int round = 0; round < options.rounds; ++round) {
          // Rotate the order, so that no server always runs right after the same one.
          for (size_t k = 0; k < contenders.size(); ++k) {
            Contender& contender = contenders[(k + static_cast<size_t>(round)) % contenders.size()];
            absl::StatusOr<LoadResult> result =
                CountingFaults(contender.pid, &contender.rounds.faults, [&] {
                  return config.rpc != "stream"
                             ? RunUnaryLoad(contender.channels, contender.unary_method,
                                            contender.request,
                                            contender.expected_response_bytes, load)
                             : RunStreamLoad(contender.channels, contender.stream_method,
                                             contender.request,
                                             contender.expected_response_bytes, load);
                });
            if (!result.ok()) {
              return absl::Status(result.status().code(),
                                  absl::StrCat(contender.name, " ", config.rpc, " ",
                                               config.activation, " ", config.payload_bytes, " ",
                                               mode_name, ": ",
                                               result.status().message()));
            }
            contender.rounds.mb_s.push_back(result->calls_per_second *
                                            static_cast<double>(config.payload_bytes) / 1e6);
            contender.rounds.p50_us.push_back(result->p50_us);
            contender.rounds.p99_us.push_back(result->p99_us);
            contender.rounds.cpu_us_per_call.push_back(result->cpu_us_per_call);
            contender.rounds.calls += result->calls;
            contender.rounds.faults_measured = contender.pid > 0;
          }
        }
        ServiceBenchRow row;
        row.rpc = config.rpc;
        row.activation = config.activation;
        row.payload_bytes = config.payload_bytes;
        row.items = config.items;
        row.mode = mode_name;
        row.concurrency = concurrency;
        row.actserve = contenders[0].rounds.Figures();
        const bool with_echo = contenders.size() >= 2;
        if (with_echo) row.echo = contenders[1].rounds.Figures();
        if (contenders.size() == 3) row.echo_default = contenders[2].rounds.Figures();
        // The p50 ratio of each round (both servers measured moments apart), and its
        // median: steadier than the ratio of the medians when the machine's load drifts.
        std::vector<double> p50_ratios;
        for (int round = 0; with_echo && round < options.rounds; ++round) {
          const double echo_p50 = contenders[1].rounds.p50_us[static_cast<size_t>(round)];
          if (echo_p50 > 0) {
            p50_ratios.push_back(contenders[0].rounds.p50_us[static_cast<size_t>(round)] /
                                 echo_p50);
          }
        }
        // In-process servers share the client's process, so its CPU time covers both;
        // with servers of their own it is the client's alone.
        std::fprintf(out,
                     "%-6s %-5s %9zu %-16s c=%d  actserve %9.1f MB/s p50 %9.0f us | echo %9.1f "
                     "MB/s p50 %9.0f us | ratio %s | p50 ratio, median of rounds %.2f | "
                     "faults per call: actserve %s, echo %s | %s CPU per call: actserve "
                     "%.1f us, echo %.1f us\n",
                     row.rpc.c_str(), row.activation.c_str(), row.payload_bytes, row.mode.c_str(),
                     concurrency, row.actserve.mb_s, row.actserve.p50_us, row.echo.mb_s,
                     row.echo.p50_us, Ratio(row.actserve.mb_s, row.echo.mb_s).c_str(),
                     Median(p50_ratios), Faults(row.actserve.faults_per_call).c_str(),
                     Faults(row.echo.faults_per_call).c_str(),
                     options.servers_in_process ? "process" : "client",
                     Median(contenders[0].rounds.cpu_us_per_call),
                     with_echo ? Median(contenders[1].rounds.cpu_us_per_call) : 0.0);
        std::fflush(out);
        rows.push_back(std::move(row));
      }
    }
  }
  std::fputs(FormatServiceTable(rows).c_str(), out);
  return rows;
}

}  // namespace bench
}  // namespace actserve
