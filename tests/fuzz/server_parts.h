// What the request-path fuzzers' services borrow, built as the server builds it: a
// one-worker compute pool, an engine whose small chunks make even small tensors take the
// chunked path (and whose element limit keeps every input to microseconds), the metrics
// and the call gate. Each fuzzer adds the service it drives.
#ifndef ACTSERVE_TESTS_FUZZ_SERVER_PARTS_H_
#define ACTSERVE_TESTS_FUZZ_SERVER_PARTS_H_

#include <grpc/grpc.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "server/call_gate.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "src/engine.h"
#include "src/thread_pool.h"

namespace actserve {
namespace fuzz {

struct ServerParts {
  explicit ServerParts(int64_t max_elements) {
    grpc_init();  // slices and byte buffers outside a server or channel
    options.max_elements = max_elements;
    options.threads = 1;
    pool = std::make_unique<ThreadPool>(ThreadPoolOptions{1, 16});
    EngineOptions engine_options;
    engine_options.max_elements = options.max_elements;
    engine_options.chunk_elements = 64;
    engine_options.pool = pool.get();
    engine = std::make_unique<Engine>(engine_options);
    metrics = std::make_unique<server::ServerMetrics>([] { return 0; },
                                                      [] { return size_t{0}; });
    gate = std::make_unique<server::CallGate>(options, metrics.get(), nullptr);
  }
  server::ServerOptions options;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<server::ServerMetrics> metrics;
  std::unique_ptr<server::CallGate> gate;
};

}  // namespace fuzz
}  // namespace actserve

#endif  // ACTSERVE_TESTS_FUZZ_SERVER_PARTS_H_
