// Lets Debian 12's civetweb (1.15) serve TLS with OpenSSL 3. Linked into the `actserve`
// executable only (server/CMakeLists.txt), together with two link options.
//
// Why: that civetweb loads OpenSSL at run time by name, dlopen("libssl.so") and
// dlopen("libcrypto.so"), and looks up its functions with dlsym. One of them,
// SSL_get_peer_certificate, OpenSSL 3 no longer exports (it became a macro for
// SSL_get1_peer_certificate), so civetweb's pointer stays null and it calls it on every
// TLS connection right after the handshake: the server crashed on the first https
// request. The executable therefore
//   - carries the SONAME "libssl.so" (-Wl,-soname): the dynamic loader answers a
//     dlopen of a name with an object already loaded under that SONAME, so civetweb's
//     dlopen("libssl.so") returns the program itself, whose dlsym searches the program
//     and then every library it links (libssl.so.3 among them) for the other functions;
//   - exports the one function that OpenSSL 3 lacks (-Wl,--dynamic-list), defined here
//     with OpenSSL 1.1's meaning (a new reference to the peer's certificate, which
//     civetweb frees).
// libcrypto.so is still opened by file name: libssl-dev provides that name, so it is in
// deploy/install-deps.sh's runtime list.
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

extern "C" __attribute__((visibility("default"))) X509* SSL_get_peer_certificate(const SSL* ssl) {
  return SSL_get1_peer_certificate(ssl);
}
