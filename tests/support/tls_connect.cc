#include "support/tls_connect.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstdint>

namespace kiso::testing {

bool ConnectTls(SSL_CTX* ctx, int port, int* fd, SSL** ssl) {
  *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(*fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
  *ssl = SSL_new(ctx);
  SSL_set_fd(*ssl, *fd);
  return SSL_connect(*ssl) == 1;
}

}  // namespace kiso::testing
