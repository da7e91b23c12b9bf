#include "apiserver/health_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/store_fixture.h"

namespace kiso::apiserver {
namespace {

// A raw HTTP/1.1 GET over loopback, returning the whole response.
std::string Get(uint16_t port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "connect failed";
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

TEST(HealthServerTest, ServesHealthzFromTheStore) {
  auto fixture = testing::StoreFixture::Open("sqlite");
  ASSERT_TRUE(fixture.ok());
  auto server = HealthServer::Start(&(*fixture)->store(), "127.0.0.1", 0);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::string ok = Get((*server)->port(), "/healthz");
  EXPECT_EQ(ok.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_EQ(ok.substr(ok.size() - 2), "ok");
  EXPECT_EQ(Get((*server)->port(), "/nope").substr(0, 12), "HTTP/1.1 404");
}

}  // namespace
}  // namespace kiso::apiserver
