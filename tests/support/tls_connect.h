// A TLS connection to a test's own server on 127.0.0.1 (TCP_NODELAY; the
// certificate is not checked), shared by the tests' and benchmarks' clients.
#pragma once

struct ssl_st;
struct ssl_ctx_st;

namespace kiso::testing {

// Connects to 127.0.0.1:`port` and completes the handshake with `ctx`'s
// settings (ALPN among them). Sets `*fd` and `*ssl` as far as it got, so the
// caller frees them whether or not it returns true.
bool ConnectTls(ssl_ctx_st* ctx, int port, int* fd, ssl_st** ssl);

}  // namespace kiso::testing
