// See compute_stream.h.
#include "client/sdk/compute_stream.h"

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/client_callback.h"
#include "proto/grpc_status.h"

namespace actserve {
namespace client_internal {
namespace {

constexpr char kComputeStreamMethod[] = "/actserve.v1.ActivationService/ComputeStream";

// The reactor behind RunComputeStream. gRPC runs its reactions on its own threads; one
// write and one read are in flight at a time, and `mu_` orders the bookkeeping between
// them.
class ComputeStreamReactor final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ComputeStreamReactor(grpc::ClientContext* context, size_t count, size_t window,
                       const StreamRequestMaker& make_request,
                       const StreamResponseTaker& on_response)
      : context_(*context),
        count_(count),
        window_(window),
        make_request_(make_request),
        on_response_(on_response) {}

  absl::Status Run(grpc::GenericStub* stub) {
    stub->PrepareBidiStreamingCall(&context_, kComputeStreamMethod, grpc::StubOptions(), this);
    StartRead(&response_);
    MaybeWrite();
    StartCall();
    done_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    if (!error_.ok()) return error_;
    if (!status_.ok()) return status_;
    if (received_ != count_) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed reply from the server: the stream ended after ", received_,
                       " of ", count_, " responses"));
    }
    return absl::OkStatus();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      request_.Clear();
      if (!ok) return;  // the call has ended; OnDone says why
    }
    MaybeWrite();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    size_t index;
    {
      absl::MutexLock lock(&mu_);
      index = received_;
    }
    absl::Status taken = on_response_(index, &response_);
    if (!taken.ok()) {
      Fail(absl::Status(taken.code(),
                        absl::StrCat("stream response ", index, ": ", taken.message())));
      return;
    }
    bool more = false;
    {
      absl::MutexLock lock(&mu_);
      ++received_;
      more = received_ < count_;
    }
    if (more) StartRead(&response_);
    MaybeWrite();
  }

  void OnDone(const grpc::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      status_ = wire::FromGrpcStatus(status);
    }
    done_.Notify();
  }

 private:
  // Records the first error and cancels the call (outside the lock: cancelling may run
  // reactions).
  void Fail(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (error_.ok()) error_ = std::move(status);
    }
    context_.TryCancel();
  }

  void MaybeWrite() {
    size_t index;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || closed_ || !error_.ok()) return;
      if (sent_ == count_) {
        closed_ = true;
      } else if (sent_ - received_ >= window_) {
        return;  // the window is full: the next response makes room
      } else {
        writing_ = true;
      }
      index = sent_;
    }
    if (index == count_) {
      StartWritesDone();
      return;
    }
    absl::StatusOr<grpc::ByteBuffer> request = make_request_(index);
    if (!request.ok()) {
      {
        absl::MutexLock lock(&mu_);
        writing_ = false;
      }
      Fail(request.status());
      return;
    }
    absl::MutexLock lock(&mu_);
    request_ = *std::move(request);
    ++sent_;
    StartWrite(&request_);
  }

  grpc::ClientContext& context_;
  const size_t count_;
  const size_t window_;
  const StreamRequestMaker& make_request_;
  const StreamResponseTaker& on_response_;
  grpc::ByteBuffer response_;  // the read in progress
  absl::Notification done_;

  absl::Mutex mu_;
  grpc::ByteBuffer request_ ABSL_GUARDED_BY(mu_);  // the write in progress
  size_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  size_t received_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status RunComputeStream(const CallStart& call, size_t count, size_t window,
                              const StreamRequestMaker& make_request,
                              const StreamResponseTaker& take_response) {
  if (count == 0) return absl::OkStatus();
  ComputeStreamReactor stream(call.context.get(), count, window, make_request, take_response);
  return stream.Run(call.generic);
}

}  // namespace client_internal
}  // namespace actserve
