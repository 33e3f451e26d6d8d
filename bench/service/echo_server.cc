// See echo_server.h.
#include "bench/service/echo_server.h"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "actserve/bench/echo.grpc.pb.h"
#include "server/server.h"

namespace actserve {
namespace bench {
namespace {

size_t VarintSize(uint64_t value) {
  return static_cast<size_t>(google::protobuf::io::CodedOutputStream::VarintSize64(value));
}

// `payload` repeated and cut to `bytes`, as a response payload.
void FillPayload(const std::string& payload, uint64_t bytes, std::string* out) {
  out->clear();
  if (payload.empty()) {
    out->assign(bytes, '\0');
    return;
  }
  out->reserve(bytes);
  while (out->size() < bytes) {
    out->append(payload, 0, std::min<size_t>(payload.size(), bytes - out->size()));
  }
}

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

EchoSizes EchoSizesFor(size_t request_bytes, size_t response_bytes) {
  EchoSizes sizes;
  if (response_bytes >= 2) {
    size_t payload = response_bytes - 2;
    while (payload > 0 && 1 + VarintSize(payload) + payload > response_bytes) --payload;
    sizes.response_payload = payload;
  }
  const size_t response_field =
      sizes.response_payload > 0 ? 1 + VarintSize(sizes.response_payload) : 0;
  if (request_bytes >= 2 + response_field) {
    size_t payload = request_bytes - 2 - response_field;
    while (payload > 0 && 1 + VarintSize(payload) + payload + response_field > request_bytes) {
      --payload;
    }
    sizes.request_payload = payload;
  }
  return sizes;
}

std::string MakeEchoRequest(const EchoSizes& sizes, const std::string& fill) {
  EchoRequest request;
  FillPayload(fill, sizes.request_payload, request.mutable_payload());
  request.set_response_bytes(sizes.response_payload);
  return request.SerializeAsString();
}

}  // namespace bench
}  // namespace actserve
