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

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

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

  // Most Compute / ComputeStream calls in progress at once (a stream counts for its whole
  // life); a call beyond it fails at once with RESOURCE_EXHAUSTED. ListActivations and
  // health checks are not counted, so that probes answer under load. 0: unlimited.
  // Default 64 (--max_inflight).
  int max_inflight = 64;

  // A batch with fewer input bytes than this (input plus grad_output, summed over items)
  // is computed on the gRPC thread that received it: handing it to a worker would cost
  // more than the work. Bytes. Default 64 KiB.
  size_t inline_bytes = size_t{64} << 10;

  // Batches waiting for a compute worker before further ones are refused with
  // RESOURCE_EXHAUSTED. Default 1024.
  size_t max_queued = 1024;

  // On shutdown, how long in-flight calls may run before they are cancelled.
  // Default 5 s (--shutdown_grace).
  absl::Duration shutdown_grace = absl::Seconds(5);
};

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_SERVER_OPTIONS_H_
