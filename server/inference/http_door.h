// The Open Inference Protocol's (KServe v2) HTTP/REST routes, on their own port
// (ServerOptions::http_address), served by civetweb (Debian's libcivetweb) with JSON by
// nlohmann-json:
//
//   GET  /v2/health/live                       200 (empty body)
//   GET  /v2/health/ready                      200 while serving, 400 once draining
//   GET  /v2                                   server metadata
//   GET  /v2/models/{name}[/versions/{v}]      model metadata
//   GET  /v2/models/{name}[/versions/{v}]/ready  200 / 400 (unknown model: 404)
//   POST /v2/models/{name}[/versions/{v}]/infer  inference, JSON tensors or the binary
//        tensor data extension (Inference-Header-Content-Length; binary outputs when an
//        output asks with "binary_data": true or the request with "binary_data_output")
//
// The same engine, compute pool, buffers, limits, token authentication (header
// "Authorization: Bearer <token>"), metrics (method label "REST ModelInfer", ...),
// deadlines (the request's "timeout" parameter, microseconds, as Triton's) and drain as
// the gRPC doors: every call passes the same CallGate. TLS and mutual TLS with the gRPC
// port's certificate, key and client CA. Every error is a JSON body {"error": "..."} with
// the HTTP status of its gRPC code (400 invalid, 401 unauthenticated, 404 not found,
// 413 body over --max_message_bytes, 429 resource exhausted, 503 unavailable, 504
// deadline exceeded, 500 internal), as Triton answers.
//
//   absl::StatusOr<std::unique_ptr<HttpDoor>> door = HttpDoor::Start(options, deps);
//   (*door)->port();   // the bound port (options.http_address may ask for port 0)
//   (*door)->Stop();   // stops listening, waits for the requests being served
#ifndef ACTSERVE_SERVER_INFERENCE_HTTP_DOOR_H_
#define ACTSERVE_SERVER_INFERENCE_HTTP_DOOR_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "server/buffer_pool.h"
#include "server/call_gate.h"
#include "server/server_options.h"
#include "src/engine.h"
#include "src/thread_pool.h"

namespace actserve {
namespace server {
namespace inference {

// What the door borrows from the server; everything must outlive the door.
struct HttpDoorDeps {
  const Engine* engine = nullptr;
  ThreadPool* pool = nullptr;              // large inferences compute here
  std::shared_ptr<BufferPool> buffers;     // outputs (and binary inputs) live here
  CallGate* gate = nullptr;
  std::function<bool()> ready;             // /v2/health/ready; false once draining
};

// Thread-safe. Destruction stops the door (as Stop).
class HttpDoor {
 public:
  // Binds options.http_address ("host:port"; port 0: any free port) and starts serving.
  // Unavailable when the address cannot be bound; InvalidArgument for a malformed address
  // or a TLS file that cannot be used (the message names the file). TLS with Debian's
  // civetweb and OpenSSL 3 needs the executable's arrangement that
  // server/inference/civetweb_openssl3.cc explains (the `actserve` binary has it).
  static absl::StatusOr<std::unique_ptr<HttpDoor>> Start(const ServerOptions& options,
                                                         HttpDoorDeps deps);
  ~HttpDoor();
  HttpDoor(const HttpDoor&) = delete;
  HttpDoor& operator=(const HttpDoor&) = delete;

  int port() const;
  // Stops accepting connections and returns once every request being served has been
  // answered; computations still running on the compute pool are stopped between chunks
  // and answered UNAVAILABLE (503), so that a shutdown whose grace is over does not wait
  // for them. Idempotent.
  void Stop();

 private:
  struct State;  // http_door.cc
  explicit HttpDoor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace inference
}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_INFERENCE_HTTP_DOOR_H_
