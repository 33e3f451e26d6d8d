// A bare gRPC echo server, the reference of the service benchmark (bench/README.md).
// Part of the benchmark harness (built with ACTSERVE_BUILD_BENCH); the requests a client
// sends it are made by client/actctl/bench/echo_request.h.
//
// It is what any protobuf service built on gRPC's callback API pays to move the same
// bytes as actserve: the request is parsed by the generated protobuf code, the response's
// payload is the request's payload repeated to the asked size, and the generated code
// serializes it. No validation, no arithmetic.
//
//   EchoServerOptions options;
//   options.address = "127.0.0.1:0";
//   absl::StatusOr<std::unique_ptr<EchoServer>> echo = EchoServer::Start(options);
//   int port = (*echo)->port();
//
// Thread-safe; destruction shuts the server down.
#ifndef ACTSERVE_BENCH_SERVICE_ECHO_SERVER_H_
#define ACTSERVE_BENCH_SERVICE_ECHO_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/actctl/bench/echo_request.h"  // EchoSizes, MakeEchoRequest
#include "server/server_options.h"

namespace actserve {
namespace bench {

struct EchoServerOptions {
  // Where to listen; port 0 picks a free port. Default "127.0.0.1:0".
  std::string address = "127.0.0.1:0";
  // true: gRPC with actserve's transport settings (server::ApplyTransportOptions with
  // `transport`), so that a comparison with actserve is on equal terms. false: gRPC's
  // defaults, except that messages of any size are allowed (gRPC's default refuses
  // anything over 4 MiB). Default true.
  bool actserve_settings = true;
  server::ServerOptions transport;
};

class EchoServer {
 public:
  // Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<EchoServer>> Start(const EchoServerOptions& options);
  ~EchoServer();
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  int port() const { return port_; }

  // Stops accepting calls, cancels the ones in progress and waits for them.
  void Shutdown();

 private:
  EchoServer() = default;

  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace bench
}  // namespace actserve

#endif  // ACTSERVE_BENCH_SERVICE_ECHO_SERVER_H_
