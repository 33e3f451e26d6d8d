// Everything that configures an actserve server, with its default and unit.
//
// `main` turns command-line flags into a ServerOptions; nothing below `main` reads a
// flag. Tests build one directly, e.g. to listen on an ephemeral port:
//
//   actserve::server::ServerOptions options;
//   options.address = "127.0.0.1:0";
//   options.max_inflight = 1;
//   auto server = actserve::server::Server::Start(options);
#ifndef ACTSERVE_SERVER_SERVER_OPTIONS_H_
#define ACTSERVE_SERVER_SERVER_OPTIONS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "src/engine.h"

namespace actserve {
namespace server {

struct ServerOptions {
  // Where to listen, as gRPC writes it ("host:port"). Port 0 picks a free port;
  // Server::port() tells which. Default "localhost:50051" (--address).
  std::string address = "localhost:50051";

  // Compute worker threads. 0: one per core. Default 0 (--threads).
  int threads = 0;

  // Largest message received or sent, in bytes; larger ones fail with
  // RESOURCE_EXHAUSTED. 0: unlimited (capped at gRPC's int limit, 2 GiB - 1).
  // Default 256 MiB (--max_message_bytes).
  int64_t max_message_bytes = int64_t{256} << 20;

  // Most input elements in one request, summed over its items; more is
  // RESOURCE_EXHAUSTED. 0: unlimited. Default 64 Mi elements, i.e. 256 MiB of float32
  // (--max_elements).
  int64_t max_elements = int64_t{1} << 26;

  // Most items in one request (or one ComputeStream message); more is RESOURCE_EXHAUSTED,
  // found while parsing. Every item costs bookkeeping whatever its size, so this keeps
  // a request of many empty items as cheap as its bytes. 0: unlimited. Default 16384
  // (--max_items).
  int64_t max_items = 16384;

  // Most dimensions of any tensor in a request; more is RESOURCE_EXHAUSTED, found while
  // parsing. 0: unlimited. Default 32 (--max_rank).
  int max_rank = 32;

  // Most Compute calls in progress at once; a call beyond it fails at once with
  // RESOURCE_EXHAUSTED. Streams, ListActivations and health checks are not counted, so
  // that open streams cannot lock unary calls out and probes answer under load.
  // 0: unlimited. Default 64 (--max_inflight).
  int max_inflight = 64;

  // Most ComputeStream calls open at once (each counts for its whole life); one beyond
  // it fails at once with RESOURCE_EXHAUSTED. Counted apart from max_inflight.
  // 0: unlimited. Default 64 (--max_streams).
  int max_streams = 64;

  // Most bytes of tensor memory (received tensors and results, pooled buffers by their
  // rounded capacity) held by all calls in flight together; a request that would need
  // more fails with RESOURCE_EXHAUSTED before it is computed. 0: unlimited. Default
  // 4 GiB (--max_tensor_memory_bytes).
  int64_t max_tensor_memory_bytes = int64_t{4} << 30;

  // A batch whose cost is below this is computed on the gRPC thread that received it:
  // handing it to a worker would cost more than the work (a hop to the pool took ~100 us
  // on the 2-core reference VM, more than computing 256 KiB; bench/README.md). The cost
  // is its input bytes (input plus grad_output, summed over items) plus
  // kItemCostBytes per item, so that a batch of many tiny items, whose bookkeeping
  // outweighs its bytes, goes to a worker where it can be cancelled. Bytes. Default
  // 256 KiB.
  size_t inline_bytes = size_t{256} << 10;

  // ComputeStream batches held at once per stream: from the read that receives one until
  // its response has been sent. 3 lets batch k+1 arrive while k computes and k-1 is sent;
  // a full window stops reading, so HTTP/2 flow control holds back a client that sends
  // faster than it reads. A stream's tensor memory is at most about this many times
  // (request + response) bytes. At least 1. Default 3.
  int stream_window = 3;

  // Free tensor buffers kept for reuse by later calls (server/buffer_pool.h): reused
  // pages are already mapped, so large requests pay no page faults for them. Bytes;
  // 0 keeps none. Default 512 MiB.
  size_t buffer_cache_bytes = size_t{512} << 20;

  // Batches waiting for a compute worker before further ones are refused with
  // RESOURCE_EXHAUSTED. 0: a batch that needs the pool is refused (small ones still run
  // inline). Default 1024 (--max_queued_batches).
  size_t max_queued = 1024;

  // On shutdown (SIGTERM), after drain_delay, how long in-flight calls may run to
  // completion before they are cancelled. Meanwhile health reports NOT_SERVING and new
  // calls are refused with UNAVAILABLE. Default 5 s (--shutdown_grace).
  absl::Duration shutdown_grace = absl::Seconds(5);

  // On shutdown, how long the server goes on serving new calls after health has turned
  // NOT_SERVING, before it starts refusing them and draining (shutdown_grace follows):
  // load balancers and health-checking clients see NOT_SERVING and move away meanwhile,
  // so calls already on their way are served instead of refused (refused calls fail
  // with UNAVAILABLE, which clients retry elsewhere; Server::Shutdown tells the steps).
  // A shutdown takes at most drain_delay + shutdown_grace.
  // Server::EndDrainDelay() (the binary: a second SIGTERM/SIGINT) cuts it short.
  // Default 0 here, so that embedded and test servers stop at once; the binary's
  // --drain_delay defaults to 3 s.
  absl::Duration drain_delay = absl::ZeroDuration();

  // --- Transport security. Paths to PEM files, read once by Server::Start. ---

  // The server's certificate chain and private key. Both set: TLS only (no plaintext
  // listener). Both empty (default): plaintext. One without the other is an error
  // (--tls_cert, --tls_key).
  std::string tls_cert_file;
  std::string tls_key_file;
  // CA certificates that client certificates must chain to. Set: mutual TLS, a client
  // without a certificate signed by one of them is refused during the handshake.
  // Requires tls_cert_file. Default empty: no client certificate asked for
  // (--tls_client_ca).
  std::string tls_client_ca_file;

  // --- Authentication. ---

  // A file of bearer tokens, one per line (blank lines and lines starting with '#' are
  // skipped). Set: every ActivationService call needs the metadata
  // "authorization: Bearer <one of the tokens>", else UNAUTHENTICATED; health checking
  // and reflection stay open for probes. Server::ReloadTokens re-reads it (SIGHUP).
  // Default empty: no authentication (--auth_token_file).
  std::string auth_token_file;

  // --- Metrics. ---

  // host:port of the Prometheus exposer (GET /metrics, plain HTTP). Port 0 picks a free
  // port (Server::metrics_port()). Empty: no exposer; metrics are still kept.
  // Default "" here so that embedded and test servers open no second port; the binary's
  // --metrics_address defaults to "0.0.0.0:9464".
  std::string metrics_address;

  // --- The Open Inference Protocol's HTTP/REST routes (server/inference/http_door.h). ---

  // host:port of the KServe v2 REST routes (/v2/...), with the gRPC port's TLS settings
  // and tokens. Port 0 picks a free port (Server::http_port()). Empty: no REST door (the
  // protocol's gRPC service is always on the gRPC port).
  // Default "" here so that embedded and test servers open no second port; the binary's
  // --http_address defaults to "localhost:8000" (Triton's HTTP port).
  std::string http_address;

  // --- Connections and memory. ---

  // Memory gRPC may use for connections and messages in flight (gRPC ResourceQuota);
  // under pressure gRPC shrinks its read buffers and refuses new connections instead of
  // growing without bound. Bytes; 0: unlimited. Default 1 GiB (--memory_quota_bytes).
  int64_t memory_quota_bytes = int64_t{1} << 30;

  // Ping a client after the connection has been idle this long, and close it when the
  // ping is not answered within keepalive_timeout: dead peers (a vanished pod, a
  // dropped NAT entry) free their resources. Default 60 s / 20 s (--keepalive_time,
  // --keepalive_timeout).
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // The most often a client may send keepalive pings (also when it has no call open);
  // more frequent pings are answered with GOAWAY. Default 10 s
  // (--keepalive_min_client_interval).
  absl::Duration keepalive_min_client_interval = absl::Seconds(10);

  // Close a connection (GOAWAY) after it has been open this long, so that clients
  // reconnect and re-resolve, e.g. to spread over new Kubernetes pods; calls in flight
  // then get max_connection_age_grace to finish. absl::InfiniteDuration(): never.
  // Defaults 30 min and 5 min (--max_connection_age, --max_connection_age_grace).
  absl::Duration max_connection_age = absl::Minutes(30);
  absl::Duration max_connection_age_grace = absl::Minutes(5);

  // Fill every tensor buffer with a canary pattern before use (BufferPoolOptions::
  // fill_with_canary), so that tests can check that no reply carries bytes its call did
  // not write. Costs a write of every byte. Default false (--fill_buffers_with_canary).
  bool fill_buffers_with_canary = false;

  // --- For tests only (no flag). ---

  // EngineOptions::before_item_for_testing of the server's engine.
  std::function<void(const ComputeItem&, const std::atomic<bool>*)> engine_before_item_for_testing;
};

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_SERVER_OPTIONS_H_
