// Bearer-token authentication for the ActivationService.
//
// The tokens come from a file (one per line); a call is authorized when its metadata
// holds "authorization: Bearer <token>" for one of them. The comparison takes a time
// that depends only on the length of what the client sent, never on how much of it
// matched, so that a token cannot be guessed byte by byte from response times.
//
//   absl::StatusOr<std::unique_ptr<TokenAuthenticator>> auth =
//       TokenAuthenticator::FromFile("/etc/actserve/tokens");
//   if ((*auth)->Authorize(header_value).ok()) { ... }
//   (*auth)->Reload();  // on SIGHUP: the file's current tokens replace the old ones
//
// Why the service checks the token itself rather than gRPC doing it: in gRPC 1.51 an
// AuthMetadataProcessor is only run for secure (TLS) server credentials (insecure
// credentials abort when given one), and a server interceptor cannot end a call with a
// status of its choosing (Hijack is client-side only). Health checking and reflection
// are separate services that never call this, so probes and tools work unauthenticated.
//
// Tokens are never logged, and no error message contains one.
#ifndef ACTSERVE_SERVER_AUTH_H_
#define ACTSERVE_SERVER_AUTH_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace actserve {
namespace server {

// The tokens in a token file's `contents`: one per line, surrounding whitespace
// trimmed; blank lines and lines starting with '#' are skipped. InvalidArgument when no
// token remains or a token contains whitespace or a control character (an HTTP header
// value could not carry it). Messages name line numbers, never the tokens.
absl::StatusOr<std::vector<std::string>> ParseTokens(absl::string_view contents);

// True when `presented` equals `secret`. Runs through all of `presented` whatever
// matches, so its time depends on presented.size() alone. `secret` must not be empty.
bool ConstantTimeEquals(absl::string_view presented, absl::string_view secret);

// Thread-safe: Authorize may run on any number of threads while Reload runs.
class TokenAuthenticator {
 public:
  // Reads the tokens of `path`. InvalidArgument naming the path when it cannot be read
  // or holds no valid token (see ParseTokens).
  static absl::StatusOr<std::unique_ptr<TokenAuthenticator>> FromFile(std::string path);

  TokenAuthenticator(const TokenAuthenticator&) = delete;
  TokenAuthenticator& operator=(const TokenAuthenticator&) = delete;

  // OK when `authorization` (the value of the "authorization" metadata; nullptr when
  // the call sent none) is "Bearer <token>" (scheme case-insensitive) for a current
  // token. Unauthenticated otherwise, with a message that says what was wrong (missing,
  // not a Bearer credential, unknown token) and never echoes the credential.
  absl::Status Authorize(const absl::string_view* authorization) const;

  // Re-reads the file. On success the new tokens replace the old ones and the number of
  // tokens is returned; on failure the old tokens stay in force.
  absl::StatusOr<size_t> Reload();

 private:
  TokenAuthenticator(std::string path, std::vector<std::string> tokens);

  const std::string path_;
  mutable absl::Mutex mu_;
  std::vector<std::string> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_AUTH_H_
