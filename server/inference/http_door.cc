// See http_door.h.
//
// civetweb serves each connection on one of its own threads and calls Serve there. A
// request is answered in these steps: route and method (404, 405); for every route but
// the health probes, CallGate::Admit (draining, token, calls in flight); for an
// inference, the body's size against --max_message_bytes before reading it (413), the
// body into a pooled buffer, the JSON header through the SAX codec (rest_json.h) with
// binary inputs left in place as views of the body, PlanInference, the outputs' pooled
// buffers, RunInference (small ones on this thread, larger ones on the compute pool while
// this thread waits for them and for the request's deadline), and the response: the JSON
// header and then each binary output straight from its buffer.
#include "server/inference/http_door.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dlfcn.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/inference/model.h"
#include "server/inference/rest_json.h"
#include "server/logging.h"

#ifndef ACTSERVE_VERSION
#error "ACTSERVE_VERSION must be defined by the build (the CMake project version)"
#endif

namespace actserve {
namespace server {
namespace inference {
namespace {

// Triton's name for the binary tensor data extension, as its ServerMetadata reports it.
constexpr absl::string_view kExtensions[] = {"binary_tensor_data"};

// The method labels of the log line and of actserve_requests_total. Health probes are
// neither logged nor counted, as on the gRPC port (grpc.health.v1 is not).
constexpr absl::string_view kServerMetadataMethod = "REST ServerMetadata";
constexpr absl::string_view kModelMetadataMethod = "REST ModelMetadata";
constexpr absl::string_view kModelInferMethod = "REST ModelInfer";

// The HTTP status of a canonical code, as grpc-gateway and Triton map them.
int HttpStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 499:
      return "Client Closed Request";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Internal Server Error";
  }
}

// One response. Headers beyond Content-Type and Content-Length go in `extra_headers`,
// each ending in "\r\n". The body is `parts`, written one after the other without
// copying. Returns the bytes of the body that were written.
uint64_t Send(mg_connection* conn, int status, absl::string_view content_type,
              absl::string_view extra_headers, absl::Span<const absl::string_view> parts,
              bool close = false) {
  uint64_t length = 0;
  for (absl::string_view part : parts) length += part.size();
  std::string head = absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n",
                                  "Content-Length: ", length, "\r\n");
  if (!content_type.empty()) absl::StrAppend(&head, "Content-Type: ", content_type, "\r\n");
  absl::StrAppend(&head, extra_headers);
  if (close) head.append("Connection: close\r\n");
  head.append("\r\n");
  mg_write(conn, head.data(), head.size());
  uint64_t sent = 0;
  for (absl::string_view part : parts) {
    // mg_write takes a size_t and returns an int: write in pieces below 1 GiB.
    size_t offset = 0;
    while (offset < part.size()) {
      const size_t piece = std::min<size_t>(part.size() - offset, size_t{1} << 30);
      const int written = mg_write(conn, part.data() + offset, piece);
      if (written <= 0) return sent;  // the client went away; nothing more to do
      offset += static_cast<size_t>(written);
      sent += static_cast<uint64_t>(written);
    }
  }
  return sent;
}

uint64_t SendJson(mg_connection* conn, int status, absl::string_view json, bool close) {
  const absl::string_view parts[] = {json};
  return Send(conn, status, "application/json", "", parts, close);
}

// `http`: the status to send; 0 for the one of status.code().
uint64_t SendError(mg_connection* conn, const absl::Status& status, bool close = false,
                   int http = 0) {
  if (http == 0) http = HttpStatus(status.code());
  const std::string body = ErrorJson(status.message());
  const absl::string_view parts[] = {body};
  // A client without a valid token learns which scheme to use (RFC 6750).
  return Send(conn, http, "application/json", http == 401 ? "WWW-Authenticate: Bearer\r\n" : "",
              parts, close);
}

// A parsed request target: /v2/models/{name}[/versions/{version}][/{action}].
struct Route {
  enum Kind { kLive, kReady, kServerMetadata, kModelMetadata, kModelReady, kModelInfer };
  Kind kind;
  std::string model;
  std::string version;
};

std::optional<Route> ParseRoute(absl::string_view path) {
  if (path == "/v2" || path == "/v2/") return Route{Route::kServerMetadata, "", ""};
  if (path == "/v2/health/live") return Route{Route::kLive, "", ""};
  if (path == "/v2/health/ready") return Route{Route::kReady, "", ""};
  if (!absl::ConsumePrefix(&path, "/v2/models/")) return std::nullopt;
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
  if (parts.empty() || parts[0].empty()) return std::nullopt;
  Route route{Route::kModelMetadata, std::string(parts[0]), ""};
  size_t next = 1;
  if (parts.size() >= 3 && parts[1] == "versions") {
    if (parts[2].empty()) return std::nullopt;
    route.version = std::string(parts[2]);
    next = 3;
  }
  if (parts.size() == next) return route;
  if (parts.size() == next + 1) {
    if (parts[next] == "ready") {
      route.kind = Route::kModelReady;
      return route;
    }
    if (parts[next] == "infer") {
      route.kind = Route::kModelInfer;
      return route;
    }
  }
  return std::nullopt;
}

// "host:port" as civetweb's listening_ports wants it: a numeric address ("localhost"
// and other names are resolved here, to IPv4), then ":port", then "s" for TLS.
struct Listening {
  std::string host;    // numeric
  std::string option;  // civetweb's listening_ports
};
absl::StatusOr<Listening> ListeningPort(absl::string_view address, bool tls) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "http_address '", address, "' is not host:port (port 0..65535; 0 picks a free one)"));
  }
  absl::string_view host = address.substr(0, colon);
  std::string numeric;
  if (host.empty() || host == "*") {
    numeric = "0.0.0.0";
  } else if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    numeric = std::string(host);  // IPv6, already numeric
  } else {
    const std::string name(host);
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("http_address '", address, "': the host '", host, "' has no IPv4 address"));
    }
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr, text,
              sizeof(text));
    freeaddrinfo(found);
    numeric = text;
  }
  return Listening{numeric, absl::StrCat(numeric, ":", port, tls ? "s" : "")};
}

// Whether civetweb can serve TLS in this process (see civetweb_openssl3.cc): it finds
// OpenSSL 1.1's SSL_get_peer_certificate, which only the actserve executable exports
// under OpenSSL 3 (civetweb would call a null pointer on the first connection without
// it), and it can open libcrypto.so by that name. Refusing here turns a crash into an
// error at start.
absl::Status CheckTlsSupport() {
  if (dlsym(RTLD_DEFAULT, "SSL_get_peer_certificate") == nullptr) {
    return absl::FailedPreconditionError(
        "TLS on the HTTP/REST port needs the actserve executable (it gives Debian's "
        "civetweb the OpenSSL 1.1 function it calls); this process lacks it");
  }
  void* crypto = dlopen("libcrypto.so", RTLD_LAZY | RTLD_LOCAL);
  if (crypto == nullptr) {
    return absl::FailedPreconditionError(
        "TLS on the HTTP/REST port: civetweb opens OpenSSL's libcrypto.so, which is "
        "missing (Debian package libssl-dev; deploy/install-deps.sh --runtime installs it)");
  }
  dlclose(crypto);
  return absl::OkStatus();
}

absl::Status CheckReadable(absl::string_view what, const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "' cannot be read: ", std::strerror(errno)));
  }
  std::fclose(file);
  return absl::OkStatus();
}

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

}  // namespace

struct HttpDoor::State {
  ServerOptions options;
  HttpDoorDeps deps;
  RestJsonLimits limits;
  mg_context* context = nullptr;
  int port = 0;
  // Set by the init_ssl callback, which has no other way to say why it failed.
  std::string tls_error;
  absl::Mutex stop_mu;
  // The cancellation flags of the computations running on the pool, so that Stop can
  // end them (a shutdown whose grace is over); `stopping` flips new ones at once.
  absl::Mutex active_mu;
  absl::flat_hash_set<std::atomic<bool>*> active ABSL_GUARDED_BY(active_mu);
  bool stopping ABSL_GUARDED_BY(active_mu) = false;

  void CancelAll() {
    absl::MutexLock lock(&active_mu);
    stopping = true;
    for (std::atomic<bool>* flag : active) flag->store(true, std::memory_order_relaxed);
  }

  // civetweb's callbacks; `user_data` / `cbdata` is the State.
  static int HandleRequest(mg_connection* conn, void* cbdata) {
    return static_cast<State*>(cbdata)->Serve(conn);
  }
  static int InitSsl(void* ssl_context, void* user_data) {
    return static_cast<State*>(user_data)->ConfigureTls(static_cast<SSL_CTX*>(ssl_context));
  }
  static int LogMessage(const mg_connection* /*conn*/, const char* message) {
    Log(LogLevel::kWarning, absl::StrCat("HTTP/REST: ", message));
    return 1;  // logged here; civetweb prints nothing itself
  }

  // civetweb 1.15 reads the certificate and the key from one file; configuring the
  // SSL_CTX here keeps them apart, as the gRPC port takes them, and adds mutual TLS.
  // Returns 1 (configured), or -1 with tls_error set.
  int ConfigureTls(SSL_CTX* ssl) {
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ssl, options.tls_cert_file.c_str()) != 1) {
      tls_error = absl::StrCat("TLS certificate '", options.tls_cert_file,
                               "' cannot be used: ", OpenSslError());
      return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl, options.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      tls_error =
          absl::StrCat("TLS key '", options.tls_key_file, "' cannot be used: ", OpenSslError());
      return -1;
    }
    if (SSL_CTX_check_private_key(ssl) != 1) {
      tls_error = absl::StrCat("TLS key '", options.tls_key_file,
                               "' does not match the certificate '", options.tls_cert_file, "'");
      return -1;
    }
    if (!options.tls_client_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ssl, options.tls_client_ca_file.c_str(), nullptr) != 1) {
        tls_error = absl::StrCat("TLS client CA '", options.tls_client_ca_file,
                                 "' cannot be used: ", OpenSslError());
        return -1;
      }
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.tls_client_ca_file.c_str());
      if (names != nullptr) SSL_CTX_set_client_CA_list(ssl, names);
      // As the gRPC port: a client without a certificate signed by the CA is refused
      // during the handshake.
      SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    return 1;
  }

  int Serve(mg_connection* conn) {
    const mg_request_info* request = mg_get_request_info(conn);
    const absl::string_view method = request->request_method;
    const std::optional<Route> route = ParseRoute(request->local_uri);
    if (!route.has_value()) {
      return Answer(conn, absl::NotFoundError(absl::StrCat(
                              "no route ", method, " ", LimitText(request->local_uri),
                              "; the Open Inference Protocol's routes are under /v2")));
    }
    const bool post = route->kind == Route::kModelInfer;
    if (method != (post ? "POST" : "GET")) {
      const std::string body =
          ErrorJson(absl::StrCat("method ", method, " is not allowed on ",
                                 LimitText(request->local_uri), "; use ", post ? "POST" : "GET"));
      const absl::string_view parts[] = {body};
      Send(conn, 405, "application/json", post ? "Allow: POST\r\n" : "Allow: GET\r\n", parts,
           Closing());
      return 405;
    }
    switch (route->kind) {
      case Route::kLive:
        return AnswerHealth(conn, absl::OkStatus());
      case Route::kReady:
        return AnswerHealth(conn, Readiness());
      case Route::kModelReady: {
        absl::StatusOr<const ActivationInfo*> model = FindModel(route->model, route->version);
        return AnswerHealth(conn, model.ok() ? Readiness() : model.status());
      }
      case Route::kServerMetadata:
        return Metadata(conn, kServerMetadataMethod, [] {
          return absl::StatusOr<std::string>(
              ServerMetadataJson(kServerName, ACTSERVE_VERSION, kExtensions));
        });
      case Route::kModelMetadata:
        return Metadata(conn, kModelMetadataMethod, [&route]() -> absl::StatusOr<std::string> {
          absl::StatusOr<ModelMetadata> metadata = GetModelMetadata(route->model, route->version);
          if (!metadata.ok()) return metadata.status();
          return ModelMetadataJson(*metadata);
        });
      case Route::kModelInfer:
        return Infer(conn, *route);
    }
    return 500;
  }

  static std::string LimitText(absl::string_view text) { return std::string(text.substr(0, 128)); }

  absl::Status Readiness() const {
    if (deps.ready && !deps.ready()) {
      return absl::UnavailableError("not ready: the server is shutting down");
    }
    return absl::OkStatus();
  }

  // Once shutdown has begun every response asks its client to close the connection, so
  // that no idle keep-alive connection carries a new request into the door's stop (a
  // client does not retry a POST that its connection lost); the client reconnects, to
  // another replica once this one has left the load balancer.
  bool Closing() const { return deps.ready && !deps.ready(); }

  int Answer(mg_connection* conn, const absl::Status& status) {
    SendError(conn, status, Closing());
    return HttpStatus(status.code());
  }

  // Health answers: 200 with an empty body, as Triton's; not ready is 400 (Triton's
  // answer, so that probes and Triton's clients read it alike) with the reason.
  int AnswerHealth(mg_connection* conn, const absl::Status& status) {
    if (status.ok()) {
      Send(conn, 200, "", "", {}, Closing());
      return 200;
    }
    if (status.code() == absl::StatusCode::kUnavailable) {
      const std::string body = ErrorJson(status.message());
      const absl::string_view parts[] = {body};
      Send(conn, 400, "application/json", "", parts, Closing());
      return 400;
    }
    return Answer(conn, status);
  }

  // As gRPC names its peers: "ipv4:127.0.0.1:51234", "ipv6:[::1]:51234".
  static std::string Peer(const mg_request_info* request) {
    const absl::string_view address = request->remote_addr;
    if (address.find(':') != absl::string_view::npos) {
      return absl::StrCat("ipv6:[", address, "]:", request->remote_port);
    }
    return absl::StrCat("ipv4:", address, ":", request->remote_port);
  }

  absl::Status AdmitCall(mg_connection* conn, CallKind kind) {
    const char* header = mg_get_header(conn, "Authorization");
    absl::string_view authorization = header == nullptr ? "" : header;
    return deps.gate->Admit(header == nullptr ? nullptr : &authorization, kind);
  }

  template <typename Body>
  int Metadata(mg_connection* conn, absl::string_view method, Body body) {
    const absl::Time start = absl::Now();
    CallStats stats;
    absl::Status status = AdmitCall(conn, CallKind::kUncounted);
    const bool admitted = status.ok();
    int http = 0;
    if (admitted) {
      absl::StatusOr<std::string> json = body();
      if (json.ok()) {
        stats.sent_bytes = SendJson(conn, 200, *json, Closing());
        http = 200;
      } else {
        status = json.status();
      }
    }
    if (!status.ok()) {
      stats.sent_bytes = SendError(conn, status, Closing());
      http = HttpStatus(status.code());
    }
    deps.gate->Record(method, Peer(mg_get_request_info(conn)), start, stats, status);
    if (admitted) deps.gate->Release(CallKind::kUncounted);
    return http;
  }

  int Infer(mg_connection* conn, const Route& route) {
    const absl::Time start = absl::Now();
    CallStats stats;
    stats.batches = 1;
    // Draining and the token before the body is read; the slot among the calls in flight
    // once it has been (InferAdmitted), so that a client uploading slowly holds a
    // connection's thread but none of the slots that gRPC calls share.
    absl::Status status = AdmitCall(conn, CallKind::kUncounted);
    const bool admitted = status.ok();
    bool slot = false;
    bool close = false;
    int http = 0;
    if (admitted) {
      try {
        status = InferAdmitted(conn, route, start, &stats, &slot, &close, &http);
      } catch (const std::bad_alloc&) {
        status = absl::ResourceExhaustedError(
            "the server has no memory for this request now; retry later or send less");
      }
    }
    // InferAdmitted has answered when it returned OK.
    if (!status.ok()) stats.sent_bytes = SendError(conn, status, close || Closing(), http);
    deps.gate->Record(kModelInferMethod, Peer(mg_get_request_info(conn)), start, stats, status);
    if (slot) deps.gate->Release(CallKind::kUnary);
    return http != 0 ? http : HttpStatus(status.code());
  }

  // Everything of an admitted inference; on OK the response has been sent. `slot`: set
  // once the call holds a slot among the calls in flight, to be released. `close`:
  // the body was left unread, so the connection cannot carry another request. `http`:
  // set for an error whose HTTP status is not its code's (413 for a body over the limit,
  // which is ResourceExhausted in the log and the metrics).
  absl::Status InferAdmitted(mg_connection* conn, const Route& route, absl::Time start,
                             CallStats* stats, bool* slot, bool* close, int* http) {
    const mg_request_info* request = mg_get_request_info(conn);
    const int64_t limit = options.max_message_bytes;
    if (const char* encoding = mg_get_header(conn, "Content-Encoding");
        encoding != nullptr && absl::string_view(encoding) != "identity") {
      *close = true;
      return absl::InvalidArgumentError(absl::StrCat("Content-Encoding '", LimitText(encoding),
                                                     "' is not supported; send the body "
                                                     "uncompressed"));
    }
    // The body, into one pooled buffer (binary inputs are then used where they lie). Its
    // length must be announced: a chunked body would grow outside the tensor memory
    // limit, and every inference client sends a Content-Length.
    if (request->content_length < 0) {
      *close = true;
      *http = 411;
      return absl::InvalidArgumentError(
          "the request body needs a Content-Length (chunked bodies are not accepted)");
    }
    Buffer body_buffer;
    absl::string_view body;
    // A client that waits for leave to send its body (curl does above 1 MiB) gets it
    // here, once the body is known to be welcome: civetweb leaves that to the handler,
    // and without it the client waits a second before sending anyway.
    if (const char* expect = mg_get_header(conn, "Expect");
        expect != nullptr && absl::EqualsIgnoreCase(expect, "100-continue") &&
        (limit <= 0 || request->content_length <= limit)) {
      constexpr absl::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      mg_write(conn, kContinue.data(), kContinue.size());
    }
    {
      if (limit > 0 && request->content_length > limit) {
        *close = true;
        *http = 413;
        return TooLarge(request->content_length);
      }
      absl::StatusOr<Buffer> buffer =
          deps.buffers->Acquire(static_cast<size_t>(request->content_length));
      if (!buffer.ok()) {
        *close = true;  // the body is left unread
        return buffer.status();
      }
      body_buffer = *std::move(buffer);
      size_t read = 0;
      while (read < body_buffer.size()) {
        const int got = mg_read(conn, body_buffer.data() + read, body_buffer.size() - read);
        if (got <= 0) {
          *close = true;
          return absl::InvalidArgumentError(absl::StrCat("the request body ended after ", read,
                                                         " of its ", body_buffer.size(),
                                                         " bytes (Content-Length)"));
        }
        read += static_cast<size_t>(got);
      }
      body = absl::string_view(body_buffer.data(), body_buffer.size());
    }
    stats->received_bytes = body.size();
    if (absl::Status admitted = AdmitCall(conn, CallKind::kUnary); !admitted.ok()) {
      return admitted;
    }
    *slot = true;

    absl::string_view json = body;
    absl::string_view binary;
    if (const char* header = mg_get_header(conn, "Inference-Header-Content-Length")) {
      uint64_t header_length = 0;
      if (!absl::SimpleAtoi(header, &header_length) || header_length > body.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("Inference-Header-Content-Length '", LimitText(header),
                         "' is not a byte count within the body's ", body.size(), " bytes"));
      }
      json = body.substr(0, header_length);
      binary = body.substr(header_length);
    }

    // Inputs given as JSON numbers are converted into pooled buffers, which count
    // against the tensor memory limit as the gRPC doors' do.
    std::vector<Buffer> input_buffers;
    auto allocate = [this, &input_buffers](size_t bytes) -> absl::StatusOr<absl::Span<char>> {
      absl::StatusOr<Buffer> buffer = deps.buffers->Acquire(bytes);
      if (!buffer.ok()) return buffer.status();
      input_buffers.push_back(*std::move(buffer));
      return input_buffers.back().span();
    };
    // The JSON reader's own buffers (its token text) can grow to the header's size, and
    // twice that while they double: charged against the tensor memory limit too.
    absl::StatusOr<Reservation> parsing = deps.buffers->Reserve(2 * json.size());
    if (!parsing.ok()) return parsing.status();
    RestInferRequest parsed;
    absl::Status status = ParseInferRequest(json, binary, limits, allocate, &parsed);
    *parsing = Reservation();  // parsed: the reader's buffers are gone
    if (!status.ok()) return status;
    parsed.request.model_name = route.model;
    parsed.request.model_version = route.version;

    absl::StatusOr<InferencePlan> plan = PlanInference(parsed.request, *deps.engine);
    if (!plan.ok()) return plan.status();
    stats->items = 1;
    stats->elements = plan->elements;

    // Which outputs go as binary data: the output's own "binary_data", else the
    // request's "binary_data_output" (the extension's rule).
    std::vector<bool> binary_output(plan->outputs.size(), parsed.binary_data_output);
    for (size_t i = 0; i < plan->outputs.size(); ++i) {
      for (size_t r = 0; r < parsed.request.outputs.size(); ++r) {
        if (parsed.request.outputs[r] == plan->outputs[i].name &&
            parsed.output_binary[r].has_value()) {
          binary_output[i] = *parsed.output_binary[r];
        }
      }
    }
    // Refuse a response that cannot fit before computing it: binary outputs by their
    // bytes, JSON ones by at least two bytes per value.
    uint64_t least_response = 0;
    for (size_t i = 0; i < plan->outputs.size(); ++i) {
      if (!plan->outputs[i].requested) continue;
      least_response += binary_output[i]
                            ? plan->outputs[i].bytes
                            : 2 * (plan->outputs[i].bytes / DTypeSize(plan->outputs[i].dtype));
    }
    if (limit > 0 && least_response > static_cast<uint64_t>(limit)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the response would be larger than the ", limit,
                       " bytes allowed (--max_message_bytes); ask for binary outputs or send fewer "
                       "elements"));
    }

    absl::StatusOr<Reservation> working = deps.buffers->Reserve(plan->working_bytes);
    if (!working.ok()) return working.status();
    std::vector<Buffer> output_buffers;
    std::vector<absl::Span<char>> spans;
    output_buffers.reserve(plan->outputs.size());
    for (const PlannedOutput& output : plan->outputs) {
      absl::StatusOr<Buffer> buffer = deps.buffers->Acquire(output.bytes);
      if (!buffer.ok()) return buffer.status();
      output_buffers.push_back(*std::move(buffer));
      spans.push_back(output_buffers.back().span());
    }

    status = Compute(*plan, spans, start);
    if (!status.ok()) return status;
    deps.gate->metrics().RecordElements(plan->item.activation.kind, plan->item.input.dtype,
                                        plan->elements);

    std::vector<RestOutput> outputs;
    for (size_t i = 0; i < plan->outputs.size(); ++i) {
      const PlannedOutput& planned = plan->outputs[i];
      if (!planned.requested) continue;
      RestOutput output;
      output.name = planned.name;
      output.dtype = planned.dtype;
      output.shape = planned.shape;
      output.data = spans[i];
      output.binary = binary_output[i];
      outputs.push_back(output);
    }
    RestResponseInfo info;
    info.model_name = route.model;
    info.model_version = kModelVersion;
    info.id = parsed.request.id;
    std::string header;
    status = WriteInferResponse(info, outputs, static_cast<size_t>(std::max<int64_t>(limit, 0)),
                                &header);
    if (!status.ok()) return status;

    std::vector<absl::string_view> parts = {header};
    bool any_binary = false;
    for (const RestOutput& output : outputs) {
      if (!output.binary) continue;
      any_binary = true;
      parts.emplace_back(output.data.data(), output.data.size());
    }
    if (any_binary) {
      stats->sent_bytes =
          Send(conn, 200, "application/octet-stream",
               absl::StrCat("Inference-Header-Content-Length: ", header.size(), "\r\n"), parts,
               Closing());
    } else {
      stats->sent_bytes = Send(conn, 200, "application/json", "", parts, Closing());
    }
    return absl::OkStatus();
  }

  absl::Status TooLarge(int64_t length) const {
    return absl::ResourceExhaustedError(absl::StrCat(
        "request body of ", length, " bytes is larger than the ", options.max_message_bytes,
        " bytes allowed (--max_message_bytes)"));
  }

  // Runs the plan: on this thread when it is small (a hop to a worker would cost more
  // than the work), else on the compute pool while this thread waits for it and for
  // the request's deadline, flipping the engine's cancellation flag when that passes.
  absl::Status Compute(const InferencePlan& plan, absl::Span<const absl::Span<char>> buffers,
                       absl::Time start) {
    const absl::Time deadline =
        plan.timeout.has_value() ? start + *plan.timeout : absl::InfiniteFuture();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          "deadline exceeded before the computation started (the request's timeout "
          "parameter, in microseconds)");
    }
    size_t cost = plan.working_bytes + plan.item.input.data.size();
    if (plan.item.grad_output.has_value()) cost += plan.item.grad_output->data.size();
    std::atomic<bool> cancelled{false};
    absl::Status status;
    if (cost < options.inline_bytes) {
      status = RunInference(*deps.engine, plan, buffers, &cancelled);
    } else {
      {
        absl::MutexLock lock(&active_mu);
        active.insert(&cancelled);
        if (stopping) cancelled.store(true, std::memory_order_relaxed);
      }
      const auto unregister = absl::MakeCleanup([this, &cancelled] {
        absl::MutexLock lock(&active_mu);
        active.erase(&cancelled);
      });
      absl::Notification done;
      const bool scheduled = deps.pool->TrySchedule([&] {
        status = RunInference(*deps.engine, plan, buffers, &cancelled);
        done.Notify();
      });
      if (!scheduled) {
        return absl::ResourceExhaustedError(
            absl::StrCat("compute queue full: ", deps.pool->queued(),
                         " batches already wait for a compute thread; retry later"));
      }
      if (!done.WaitForNotificationWithDeadline(deadline)) {
        cancelled.store(true, std::memory_order_relaxed);
        done.WaitForNotification();  // the task uses this frame's plan and buffers
      }
    }
    if (status.code() == absl::StatusCode::kCancelled) {
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            "deadline exceeded: the computation was stopped and its partial results "
            "discarded; allow a longer timeout or send fewer elements");
      }
      // Only Stop flips the flag otherwise.
      return absl::UnavailableError(
          "the server is shutting down: the computation was stopped; retry on another "
          "replica");
    }
    return status;
  }
};

HttpDoor::HttpDoor(std::unique_ptr<State> state) : state_(std::move(state)) {}

HttpDoor::~HttpDoor() { Stop(); }

int HttpDoor::port() const { return state_->port; }

void HttpDoor::Stop() {
  absl::MutexLock lock(&state_->stop_mu);
  if (state_->context == nullptr) return;
  // Computations still running stop between chunks and answer UNAVAILABLE; then
  // mg_stop closes the listening socket and joins civetweb's threads, each of which
  // finishes the request it is serving first.
  state_->CancelAll();
  mg_stop(state_->context);
  state_->context = nullptr;
}

absl::StatusOr<std::unique_ptr<HttpDoor>> HttpDoor::Start(const ServerOptions& options,
                                                          HttpDoorDeps deps) {
  auto state = std::make_unique<State>();
  state->options = options;
  state->deps = std::move(deps);
  state->limits.max_rank = options.max_rank;
  // The document's own 4 levels plus one per dimension of a nested data array.
  state->limits.max_depth = 4 + (options.max_rank > 0 ? options.max_rank : 64);
  const bool tls = !options.tls_cert_file.empty();
  if (tls != !options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key file");
  }
  if (tls) {
    if (absl::Status s = CheckTlsSupport(); !s.ok()) return s;
    if (absl::Status s = CheckReadable("TLS certificate", options.tls_cert_file); !s.ok()) return s;
    if (absl::Status s = CheckReadable("TLS key", options.tls_key_file); !s.ok()) return s;
    if (!options.tls_client_ca_file.empty()) {
      if (absl::Status s = CheckReadable("TLS client CA", options.tls_client_ca_file); !s.ok()) {
        return s;
      }
    }
  }
  absl::StatusOr<Listening> listening = ListeningPort(options.http_address, tls);
  if (!listening.ok()) return listening.status();

  // Every admitted inference can hold a thread while it computes, and probes must still
  // find one: the inflight limit plus some spare, within reason. Idle keep-alive
  // connections give their thread back after keep_alive_timeout_ms.
  const int inflight = options.max_inflight > 0 ? std::min(options.max_inflight, 256) : 64;
  const std::string threads = absl::StrCat(inflight + 8);
  const char* config[] = {
      "listening_ports", listening->option.c_str(), "num_threads", threads.c_str(),
      "enable_keep_alive", "yes", "keep_alive_timeout_ms", "5000",
      // A slow client may take this long for a large body; then its thread is freed.
      "request_timeout_ms", "60000", nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = &State::LogMessage;
  if (tls) callbacks.init_ssl = &State::InitSsl;
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = state.get();
  init.configuration_options = config;
  char error_text[256] = {};
  mg_error_data error{};
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  mg_init_library(tls ? MG_FEATURES_TLS : MG_FEATURES_DEFAULT);
  state->context = mg_start2(&init, &error);
  if (state->context == nullptr) {
    if (!state->tls_error.empty()) return absl::InvalidArgumentError(state->tls_error);
    return absl::UnavailableError(
        absl::StrCat("HTTP/REST cannot listen on '", options.http_address, "': ", error_text));
  }
  mg_set_request_handler(state->context, "/", &State::HandleRequest, state.get());
  mg_server_port port{};
  if (mg_get_server_ports(state->context, 1, &port) < 1) {
    mg_stop(state->context);
    state->context = nullptr;
    return absl::UnavailableError(
        absl::StrCat("HTTP/REST: no port bound for '", options.http_address, "'"));
  }
  state->port = port.port;
  Log(LogLevel::kInfo,
      absl::StrCat("HTTP/REST listening on ", tls ? "https://" : "http://", listening->host, ":",
                   state->port, " (KServe v2 routes under /v2, ", threads, " threads",
                   tls ? (options.tls_client_ca_file.empty() ? ", TLS" : ", mutual TLS") : "",
                   ")"));
  return std::unique_ptr<HttpDoor>(new HttpDoor(std::move(state)));
}

}  // namespace inference
}  // namespace server
}  // namespace actserve
