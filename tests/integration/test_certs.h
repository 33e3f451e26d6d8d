// Throwaway X.509 certificates for TLS tests, made with the openssl command at test time
// (nothing secret is committed): EC P-256 keys, valid for a day.
#ifndef ACTSERVE_TESTS_INTEGRATION_TEST_CERTS_H_
#define ACTSERVE_TESTS_INTEGRATION_TEST_CERTS_H_

#include <string>

#include "absl/status/status.h"

namespace actserve {
namespace integration {

// A self-signed certificate authority: `dir`/<name>.crt and `dir`/<name>.key. An error
// with openssl's output when it fails.
absl::Status MakeCa(const std::string& dir, const std::string& name);

// A certificate `dir`/<name>.crt (key <name>.key) signed by the CA `ca` made by MakeCa in
// the same `dir`, good for server and client authentication, with the subjectAltName
// `alt_names` (e.g. "DNS:localhost,IP:127.0.0.1").
absl::Status MakeLeaf(const std::string& dir, const std::string& name, const std::string& ca,
                      const std::string& alt_names);

}  // namespace integration
}  // namespace actserve

#endif  // ACTSERVE_TESTS_INTEGRATION_TEST_CERTS_H_
