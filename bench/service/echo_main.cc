// actserve_echo: the bare gRPC echo server of the service benchmark, as a binary, to run
// beside actserve servers elsewhere (`actctl bench --target=... --echo_target=...`).
//
//   actserve_echo --address=0.0.0.0:50052
//   actserve_echo --address=0.0.0.0:50053 --default_settings
#include <csignal>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/service/echo_server.h"

ABSL_FLAG(std::string, address, "localhost:50052", "where to listen (host:port)");
ABSL_FLAG(bool, default_settings, false,
          "gRPC's default transport settings instead of actserve's (messages of any size "
          "are allowed either way)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("actserve_echo: the bare gRPC echo of the service benchmark");
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  actserve::bench::EchoServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.actserve_settings = !absl::GetFlag(FLAGS_default_settings);
  options.transport.max_message_bytes = 0;
  absl::StatusOr<std::unique_ptr<actserve::bench::EchoServer>> echo =
      actserve::bench::EchoServer::Start(options);
  if (!echo.ok()) {
    std::fprintf(stderr, "actserve_echo: %s\n", echo.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "actserve_echo listening on %s (port %d, %s settings)\n",
               options.address.c_str(), (*echo)->port(),
               options.actserve_settings ? "actserve" : "default");
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  (*echo)->Shutdown();
  return 0;
}
