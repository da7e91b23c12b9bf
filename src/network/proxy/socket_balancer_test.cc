// The entries a Service port gives (pure), then the programs in the real
// kernel (root): three listening sockets on 127.0.0.1 behind a Service
// address in 127.0.0.0/8 that nothing listens on, so a connection the
// programs did not redirect is refused rather than sent anywhere.
#include "network/proxy/socket_balancer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace kiso::network::proxy {
namespace {

ServicePort LeastConnections() {
  ServicePort p;
  p.cluster_ip = "10.43.0.20";
  p.port = 80;
  p.algorithm = Algorithm::kLeastConnections;
  p.endpoints = {{.ip = "10.42.0.5", .port = 8080}, {.ip = "10.42.0.6", .port = 8080}};
  return p;
}

TEST(SocketBalancerEntries, ClusterIpExternalIpsAndNodePortOnEveryNodeAddress) {
  ServicePort p = LeastConnections();
  p.node_port = 30080;
  p.external_ips = {"192.0.2.10"};
  auto entries = SocketBalancerEntries(p, {"127.0.0.1", "192.0.2.2"});
  std::vector<SocketAddress> both = {{"10.42.0.5", 8080}, {"10.42.0.6", 8080}};
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ((entries[{"10.43.0.20", 80}]), both);
  EXPECT_EQ((entries[{"192.0.2.10", 80}]), both);
  EXPECT_EQ((entries[{"127.0.0.1", 30080}]), both);
  EXPECT_EQ((entries[{"192.0.2.2", 30080}]), both);
}

TEST(SocketBalancerEntries, TrafficPoliciesChooseTheEndpointsOfEachPath) {
  ServicePort p = LeastConnections();
  p.node_port = 30080;
  p.external_local = true;
  p.endpoints[0].local = false;
  auto entries = SocketBalancerEntries(p, {"127.0.0.1"});
  EXPECT_EQ((entries[{"10.43.0.20", 80}].size()), 2u);
  EXPECT_EQ((entries[{"127.0.0.1", 30080}]), (std::vector<SocketAddress>{{"10.42.0.6", 8080}}));
}

TEST(SocketBalancerEntries, OnlyTcpLeastConnectionsWithoutAffinity) {
  ServicePort p = LeastConnections();
  p.algorithm = Algorithm::kRoundRobin;
  EXPECT_TRUE(SocketBalancerEntries(p, {}).empty());
  p = LeastConnections();
  p.protocol = "udp";
  EXPECT_TRUE(SocketBalancerEntries(p, {}).empty());
  p = LeastConnections();
  p.affinity_seconds = 10;
  EXPECT_TRUE(SocketBalancerEntries(p, {}).empty());
}

TEST(SocketBalancerEntries, LeavesToNftablesWhatHasNoEndpointOrTooManyOfThem) {
  ServicePort p = LeastConnections();
  for (auto& e : p.endpoints) e.ready = false;
  EXPECT_TRUE(SocketBalancerEntries(p, {}).empty());  // nftables rejects it.
  p = LeastConnections();
  p.endpoints.clear();
  for (int i = 0; i < 65; ++i) p.endpoints.push_back({.ip = "10.42.1." + std::to_string(i)});
  EXPECT_TRUE(SocketBalancerEntries(p, {}).empty());
  p.endpoints.pop_back();
  EXPECT_EQ(SocketBalancerEntries(p, {}).begin()->second.size(), 64u);
}

constexpr const char* kService = "127.77.0.1";

class Backends : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
    for (auto& l : listeners_) {
      l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
      ASSERT_EQ(listen(l, 64), 0);
      socklen_t len = sizeof a;
      getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
      ports_.push_back(ntohs(a.sin_port));
    }
    port_.cluster_ip = kService;
    port_.port = 80;
    port_.algorithm = Algorithm::kLeastConnections;
    for (int p : ports_) port_.endpoints.push_back({.ip = "127.0.0.1", .port = p});
    auto b = SocketBalancer::Open({});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    balancer_ = std::move(*b);
    ASSERT_TRUE(balancer_->Full({{"default/lc:http/tcp", port_}}).ok());
  }
  void TearDown() override {
    balancer_.reset();
    for (int fd : accepted_) close(fd);
    for (int fd : clients_) close(fd);
    for (int l : listeners_) close(l);
  }

  // Connects to the Service; the index of the backend that accepted, or -1 when refused.
  int Connect() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(80);
    inet_pton(AF_INET, kService, &a.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return -1;
    }
    clients_.push_back(fd);
    // Loopback connects complete at once: the connection waits in one backlog.
    for (size_t i = 0; i < listeners_.size(); ++i) {
      int c = accept4(listeners_[i], nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        accepted_.push_back(c);
        backend_of_.push_back(static_cast<int>(i));
        return static_cast<int>(i);
      }
    }
    backend_of_.push_back(-2);
    return -2;
  }
  // Closes the clients connected to backend i.
  void CloseClientsOf(int i) {
    for (size_t c = 0; c < clients_.size(); ++c) {
      if (backend_of_[c] == i && clients_[c] >= 0) {
        close(clients_[c]);
        clients_[c] = -1;
      }
    }
  }

  std::array<int, 3> listeners_{-1, -1, -1};
  std::vector<int> ports_;
  ServicePort port_;
  std::unique_ptr<SocketBalancer> balancer_;
  std::vector<int> clients_, accepted_, backend_of_;
};

TEST_F(Backends, EachConnectionGoesToTheEndpointWithFewestOpenOnes) {
  std::vector<int> got(6);
  for (int& backend : got) backend = Connect();
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 0, 1, 2}));
  for (int p : ports_) EXPECT_EQ(balancer_->Active("127.0.0.1", p), 2);

  // The client sees the Service it asked for.
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  ASSERT_EQ(getpeername(clients_[0], reinterpret_cast<sockaddr*>(&peer), &len), 0);
  char text[INET_ADDRSTRLEN];
  EXPECT_STREQ(inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text), kService);
  EXPECT_EQ(ntohs(peer.sin_port), 80);

  // Backend 1's clients leave: the next two connections are its.
  CloseClientsOf(1);
  EXPECT_EQ(balancer_->Active("127.0.0.1", ports_[1]), 0);
  EXPECT_EQ(Connect(), 1);
  EXPECT_EQ(Connect(), 1);
  EXPECT_EQ(Connect(), 0);
}

TEST_F(Backends, AnUpdatedListIsFollowedAndARemovedServiceIsNoLongerRedirected) {
  ServicePort only_last = port_;
  only_last.endpoints[0].ready = false;
  only_last.endpoints[1].ready = false;
  const std::string name = "default/lc:http/tcp";
  ASSERT_TRUE(balancer_->Update({{name, port_}}, {{name, only_last}}, {name}).ok());
  EXPECT_EQ(Connect(), 2);
  EXPECT_EQ(Connect(), 2);
  ASSERT_TRUE(balancer_->Update({{name, only_last}}, {}, {name}).ok());
  EXPECT_TRUE(balancer_->Addresses().empty());
  EXPECT_EQ(Connect(), -1);  // Nothing listens on the Service address itself.
  // The closed Service's endpoint kept its count while connections were open.
  EXPECT_EQ(balancer_->Active("127.0.0.1", ports_[2]), 2);
}

TEST_F(Backends, APodsOwnLoopbackIsNotTheNodes) {
  // In a network namespace of its own with listeners on the endpoints'
  // ports, as a pod could have: a connection to the Service's loopback
  // address stays there (refused) instead of reaching them.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(2);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq lo{};
    std::strcpy(lo.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &lo) != 0) _exit(3);
    lo.ifr_flags = static_cast<int16_t>(lo.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &lo) != 0) _exit(4);
    for (int p : ports_) {
      int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(p));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 8) != 0) _exit(5);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(80);
    inet_pton(AF_INET, kService, &a.sin_addr);
    _exit(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno == ECONNREFUSED ? 0
                                                                                               : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(Connect(), 0);  // Here it is the node's.
}

TEST_F(Backends, DetachedWithTheBalancer) {
  EXPECT_EQ(Connect(), 0);
  balancer_.reset();
  EXPECT_EQ(Connect(), -1);
}

}  // namespace
}  // namespace kiso::network::proxy
