// See load.h.
#include "client/actctl/bench/load.h"

#include <grpcpp/generic/generic_stub.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "proto/grpc_status.h"

namespace actserve {
namespace bench {
namespace {

void SetDeadline(const LoadOptions& options, grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(options.deadline));
}

absl::Status WrongSize(size_t got, size_t expected) {
  return absl::InternalError(
      absl::StrCat("response of ", got, " bytes, expected ", expected));
}

double ProcessCpuMicroseconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e6 + static_cast<double>(now.tv_nsec) / 1e3;
}

// Runs `worker(i, &latencies_us)` on options.concurrency threads and gathers the result.
template <typename Worker>
absl::StatusOr<LoadResult> RunWorkers(const LoadOptions& options, Worker worker) {
  const int workers = std::max(1, options.concurrency);
  std::vector<std::vector<double>> latencies(workers);
  std::vector<absl::Status> statuses(workers);
  const absl::Time start = absl::Now();
  const double cpu_start = ProcessCpuMicroseconds();
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] { statuses[i] = worker(i, &latencies[i]); });
  }
  for (std::thread& thread : threads) thread.join();
  const double cpu_us = ProcessCpuMicroseconds() - cpu_start;
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (const absl::Status& status : statuses) {
    if (!status.ok()) return status;
  }
  std::vector<double> all;
  for (const std::vector<double>& some : latencies) all.insert(all.end(), some.begin(), some.end());
  LoadResult result;
  result.calls = static_cast<int64_t>(all.size());
  result.seconds = seconds;
  result.calls_per_second = seconds > 0 ? static_cast<double>(all.size()) / seconds : 0;
  result.p50_us = Quantile(all, 0.50);
  result.p99_us = Quantile(all, 0.99);
  result.cpu_us_per_call = all.empty() ? 0 : cpu_us / static_cast<double>(all.size());
  return result;
}

// One stream: sends `request` `messages` times with at most `window` unanswered, and
// records each message's latency.
class StreamCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamCall(const grpc::ByteBuffer& request, size_t expected_response_bytes, int messages,
             int window, std::vector<double>* latencies_us)
      : request_(request),
        expected_(expected_response_bytes),
        messages_(messages),
        window_(std::max(1, window)),
        latencies_us_(*latencies_us) {}

  void Start() {
    StartRead(&response_);
    MaybeWrite();
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) return;  // the call has ended; OnDone reports why
    }
    MaybeWrite();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    bool more = false;
    {
      absl::MutexLock lock(&mu_);
      if (expected_ != 0 && response_.Length() != expected_ && error_.ok()) {
        error_ = WrongSize(response_.Length(), expected_);
      }
      latencies_us_.push_back(
          absl::ToDoubleMicroseconds(absl::Now() - sent_at_[received_]));
      ++received_;
      more = received_ < messages_;
    }
    if (more) StartRead(&response_);
    MaybeWrite();
  }

  void OnDone(const grpc::Status& status) override {
    status_ = wire::FromGrpcStatus(status);
    done_.Notify();
  }

  absl::Status Wait() {
    done_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    if (!error_.ok()) return error_;
    if (!status_.ok()) return status_;
    if (received_ != messages_) {
      return absl::InternalError(absl::StrCat("stream ended after ", received_, " of ",
                                              messages_, " responses"));
    }
    return absl::OkStatus();
  }

 private:
  void MaybeWrite() {
    bool write = false, writes_done = false;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || closed_) return;
      if (sent_ < messages_ && sent_ - received_ < window_) {
        writing_ = true;
        write = true;
        sent_at_.push_back(absl::Now());
        ++sent_;
      } else if (sent_ == messages_) {
        closed_ = true;
        writes_done = true;
      }
    }
    if (write) StartWrite(&request_);
    if (writes_done) StartWritesDone();
  }

  const grpc::ByteBuffer request_;
  const size_t expected_;
  const int messages_;
  const int window_;
  std::vector<double>& latencies_us_;
  grpc::ByteBuffer response_;
  absl::Notification done_;
  absl::Status status_;

  absl::Mutex mu_;
  std::vector<absl::Time> sent_at_ ABSL_GUARDED_BY(mu_);
  int sent_ ABSL_GUARDED_BY(mu_) = 0;
  int received_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

double Quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

absl::StatusOr<int64_t> MinorPageFaults(int pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  std::ifstream file(path);
  std::string stat;
  if (!file || !std::getline(file, stat)) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  // Field 2, the command name, is in parentheses and may hold spaces or ')' itself;
  // the fields after the last ')' start at field 3 (state), so minflt is the 8th.
  const size_t name_end = stat.rfind(')');
  std::istringstream fields(name_end == std::string::npos ? "" : stat.substr(name_end + 1));
  std::string field;
  for (int i = 0; i < 7 && (fields >> field); ++i) {
  }
  int64_t minflt = -1;
  if (!(fields >> minflt) || minflt < 0) {
    return absl::InternalError(absl::StrCat("no minflt field in ", path));
  }
  return minflt;
}

grpc::ChannelArguments BenchChannelArguments() {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  arguments.SetMaxSendMessageSize(-1);
  // Each benchmark channel gets its own connection, not one shared with another channel
  // to the same address.
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return arguments;
}

absl::StatusOr<LoadResult> RunUnaryLoad(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels, const std::string& method,
    const grpc::ByteBuffer& request, size_t expected_response_bytes, const LoadOptions& options) {
  if (channels.empty()) return absl::InvalidArgumentError("no channel to load");
  return RunWorkers(options, [&](int worker, std::vector<double>* latencies) -> absl::Status {
    grpc::GenericStub stub(channels[static_cast<size_t>(worker) % channels.size()]);
    const absl::Time start = absl::Now();
    for (int calls = 0; calls < options.min_calls || absl::Now() - start < options.min_time;
         ++calls) {
      grpc::ClientContext context;
      SetDeadline(options, &context);
      grpc::ByteBuffer response;
      grpc::Status status;
      absl::Notification done;
      const absl::Time call_start = absl::Now();
      stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                     [&](grpc::Status s) {
                       status = std::move(s);
                       done.Notify();
                     });
      done.WaitForNotification();
      latencies->push_back(absl::ToDoubleMicroseconds(absl::Now() - call_start));
      if (!status.ok()) return wire::FromGrpcStatus(status);
      if (expected_response_bytes != 0 && response.Length() != expected_response_bytes) {
        return WrongSize(response.Length(), expected_response_bytes);
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<LoadResult> RunStreamLoad(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels, const std::string& method,
    const grpc::ByteBuffer& request, size_t expected_response_bytes, const LoadOptions& options) {
  if (channels.empty()) return absl::InvalidArgumentError("no channel to load");
  return RunWorkers(options, [&](int worker, std::vector<double>* latencies) -> absl::Status {
    grpc::GenericStub stub(channels[static_cast<size_t>(worker) % channels.size()]);
    const absl::Time start = absl::Now();
    for (int done = 0; done < options.min_calls || absl::Now() - start < options.min_time;
         done += options.stream_messages) {
      grpc::ClientContext context;
      SetDeadline(options, &context);
      StreamCall call(request, expected_response_bytes, options.stream_messages,
                      options.stream_window, latencies);
      stub.PrepareBidiStreamingCall(&context, method, grpc::StubOptions(), &call);
      call.Start();
      absl::Status status = call.Wait();
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  });
}

}  // namespace bench
}  // namespace actserve
