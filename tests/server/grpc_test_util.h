// Test support for the hardening suites: raw gRPC calls with hand-encoded protobuf (for
// health checking and reflection, whose generated code Debian does not ship), bearer
// metadata, a minimal HTTP GET for /metrics, a Prometheus text reader, and throwaway
// files (token files, certificates made with the `openssl` command at test time).
#ifndef ACTSERVE_TESTS_SERVER_GRPC_TEST_UTIL_H_
#define ACTSERVE_TESTS_SERVER_GRPC_TEST_UTIL_H_

#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"

namespace actserve {
namespace server {
namespace testing {

inline grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

inline std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// A deadline for calls that must not hang a failing test; tests never depend on it.
inline std::chrono::system_clock::time_point SafetyDeadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(60);
}

// A unary call with raw request bytes; waits for it and returns its status.
inline grpc::Status RawUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                                 const std::string& method, const std::string& request,
                                 std::string* reply) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(SafetyDeadline());
  const grpc::ByteBuffer request_buffer = ToByteBuffer(request);
  grpc::ByteBuffer reply_buffer;
  grpc::Status result;
  absl::Notification done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request_buffer, &reply_buffer,
                 [&](grpc::Status status) {
                   result = std::move(status);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (reply != nullptr) *reply = FromByteBuffer(reply_buffer);
  return result;
}

// grpc.health.v1.HealthCheckResponse.ServingStatus values.
constexpr int kServing = 1;
constexpr int kNotServing = 2;

// The ServingStatus of `service` ("" = the server), from a hand-encoded
// HealthCheckRequest {string service = 1;}; the reply is HealthCheckResponse
// {ServingStatus status = 1;}: tag 0x08 then a one-byte varint. -1 when the call fails.
inline int HealthStatus(const std::shared_ptr<grpc::Channel>& channel,
                        const std::string& service) {
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0A);  // field 1, length-delimited
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  std::string reply;
  const grpc::Status status =
      RawUnaryCall(channel, "/grpc.health.v1.Health/Check", request, &reply);
  if (!status.ok()) return -1;
  if (reply.size() != 2 || reply[0] != 0x08) return 0;  // 0: UNKNOWN (the default)
  return reply[1];
}

// A ClientContext carrying "authorization: Bearer <token>".
inline void AddBearer(grpc::ClientContext* context, const std::string& token) {
  context->AddMetadata("authorization", "Bearer " + token);
}

// GET `path` from 127.0.0.1:`port` over a plain TCP socket (HTTP/1.0, so the server
// closes the connection after the body). Returns the whole response, headers included;
// empty when the connection fails.
inline std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, 0);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      response.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return response;
}

// The value of the sample of `name` whose labels include every `name="value"` pair in
// `labels`, from Prometheus text `exposition`; -1 when there is no such sample.
inline double MetricValue(const std::string& exposition, const std::string& name,
                          const std::vector<std::string>& labels = {}) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    if (name_end == absl::string_view::npos || line.substr(0, name_end) != name) continue;
    const size_t value_start = line.rfind(' ');
    bool all = true;
    for (const std::string& label : labels) {
      if (!absl::StrContains(line.substr(0, value_start), label)) all = false;
    }
    if (!all) continue;
    double value = 0;
    if (absl::SimpleAtod(line.substr(value_start + 1), &value)) return value;
  }
  return -1;
}

// A fresh directory under $TMPDIR (or /tmp), removed with its contents at destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/actserve.XXXXXX");
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Runs `command` through the shell with its output discarded; true when it exits 0.
inline bool Run(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

// A certificate authority made with the openssl command in `dir`: "<name>.crt" and
// "<name>.key", EC P-256, valid for a day. Returns false when openssl fails.
inline bool MakeCa(const TempDir& dir, const std::string& name) {
  return Run(absl::StrCat(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes",
      " -days 1 -subj /CN=", name, " -keyout '", dir.File(name + ".key"), "' -out '",
      dir.File(name + ".crt"), "'"));
}

// A leaf certificate "<name>.crt"/"<name>.key" signed by the CA `ca`, valid for
// localhost and 127.0.0.1 (so it serves as a server or as a client certificate).
inline bool MakeLeaf(const TempDir& dir, const std::string& name, const std::string& ca) {
  const std::string ext = dir.File(name + ".ext");
  WriteFile(ext,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
            "extendedKeyUsage=serverAuth,clientAuth\n");
  return Run(absl::StrCat("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
                          " -nodes -subj /CN=", name, " -keyout '",
                          dir.File(name + ".key"), "' -out '", dir.File(name + ".csr"),
                          "'")) &&
         Run(absl::StrCat("openssl x509 -req -days 1 -in '", dir.File(name + ".csr"),
                          "' -CA '", dir.File(ca + ".crt"), "' -CAkey '",
                          dir.File(ca + ".key"), "' -CAcreateserial -extfile '", ext,
                          "' -out '", dir.File(name + ".crt"), "'"));
}

}  // namespace testing
}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_TESTS_SERVER_GRPC_TEST_UTIL_H_
