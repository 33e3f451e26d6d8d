// See echo_server.h.
#include "bench/service/echo_server.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "actserve/bench/echo.grpc.pb.h"
#include "client/actctl/bench/echo_request.h"
#include "server/server.h"

namespace actserve {
namespace bench {
namespace {

class EchoStreamReactor final : public grpc::ServerBidiReactor<EchoRequest, EchoResponse> {
 public:
  EchoStreamReactor() { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    FillPayload(request_.payload(), request_.response_bytes(), response_.mutable_payload());
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "a response could not be sent"));
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  EchoRequest request_;
  EchoResponse response_;
};

class EchoService final : public Echo::CallbackService {
 public:
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const EchoRequest* request, EchoResponse* response) override {
    FillPayload(request->payload(), request->response_bytes(), response->mutable_payload());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerBidiReactor<EchoRequest, EchoResponse>* EchoStream(
      grpc::CallbackServerContext* /*context*/) override {
    return new EchoStreamReactor();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<EchoServer>> EchoServer::Start(const EchoServerOptions& options) {
  std::unique_ptr<EchoServer> echo(new EchoServer());
  echo->service_ = std::make_unique<EchoService>();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(), &echo->port_);
  if (options.actserve_settings) {
    server::ApplyTransportOptions(options.transport, &builder);
  } else {
    builder.SetMaxReceiveMessageSize(-1);
    builder.SetMaxSendMessageSize(-1);
  }
  builder.RegisterService(echo->service_.get());
  echo->server_ = builder.BuildAndStart();
  if (echo->server_ == nullptr || echo->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("echo server: cannot listen on '", options.address, "'"));
  }
  return echo;
}

EchoServer::~EchoServer() { Shutdown(); }

void EchoServer::Shutdown() {
  if (server_ == nullptr) return;
  server_->Shutdown();
  server_->Wait();
  server_.reset();
}

}  // namespace bench
}  // namespace actserve
