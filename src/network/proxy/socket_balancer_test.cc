// The entries a Service port gives (pure), then the programs in the real
// kernel (root): three listening sockets on 127.0.0.1 behind a Service
// address in 127.0.0.0/8 that nothing listens on, so a connection the
// programs did not redirect is refused rather than sent anywhere.
#include "network/proxy/socket_balancer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include "common/process.h"
#include "network/proxy/conntrack.h"

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
  EXPECT_EQ((entries[{"10.43.0.20", 80}]), (BalancerEntry{both, false}));
  EXPECT_EQ((entries[{"192.0.2.10", 80}]), (BalancerEntry{both, true}));
  EXPECT_EQ((entries[{"127.0.0.1", 30080}]), (BalancerEntry{both, true}));
  EXPECT_EQ((entries[{"192.0.2.2", 30080}]), (BalancerEntry{both, true}));
}

TEST(SocketBalancerEntries, TrafficPoliciesChooseTheEndpointsOfEachPath) {
  ServicePort p = LeastConnections();
  p.node_port = 30080;
  p.external_local = true;
  p.endpoints[0].local = false;
  auto entries = SocketBalancerEntries(p, {"127.0.0.1"});
  EXPECT_EQ((entries[{"10.43.0.20", 80}].backends.size()), 2u);
  EXPECT_EQ((entries[{"127.0.0.1", 30080}].backends),
            (std::vector<SocketAddress>{{"10.42.0.6", 8080}}));
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
  EXPECT_EQ(SocketBalancerEntries(p, {}).begin()->second.backends.size(), 64u);
}

// The Service's address, one for each test process: the programs of every
// balancer attached at once (ctest runs these tests side by side) all see
// each connect(), and one with the same address would take another's.
const std::string& Service() {
  static const std::string address = [] {
    const int pid = getpid();
    return fmt::format("127.77.{}.{}", (pid / 250) % 250, pid % 250 + 1);
  }();
  return address;
}

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
    port_.cluster_ip = Service();
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
    inet_pton(AF_INET, Service().c_str(), &a.sin_addr);
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
  EXPECT_STREQ(inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text), Service().c_str());
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
    inet_pton(AF_INET, Service().c_str(), &a.sin_addr);
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

// Connections from another node: a network namespace of the test's own,
// joined to this one by a veth pair whose node end has the node address
// the node port answers on. No nftables here: the node port's listener is
// on that address, and the tc programs' choice shows in the counts. The
// "other node" is a namespace of this machine, whose sockets the cgroup hook
// would balance at connect(); so it connects to an address of its own link
// that it translates to the node's (its nftables), and the node's address
// is first seen on the wire, as from another machine.
class FromOtherNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "network namespaces and BPF need root";
    const int id = getpid() % 250;
    ns_ = fmt::format("kiso-sbt-{}", getpid());
    host_if_ = fmt::format("ksbt{}", getpid());
    node_ip_ = fmt::format("198.18.{}.1", id);
    client_ip_ = fmt::format("198.18.{}.2", id);
    alias_ip_ = fmt::format("198.18.{}.5", id);
    Ip({"netns", "add", ns_});
    Ip({"link", "add", host_if_, "type", "veth", "peer", "name", "eth0", "netns", ns_});
    Ip({"addr", "add", node_ip_ + "/29", "dev", host_if_});
    Ip({"link", "set", host_if_, "up"});
    Ip({"-n", ns_, "addr", "add", client_ip_ + "/29", "dev", "eth0"});
    Ip({"-n", ns_, "link", "set", "eth0", "up"});
    Ip({"-n", ns_, "link", "set", "lo", "up"});
    auto nat = RunCommand(
        {"/usr/sbin/ip", "netns", "exec", ns_, "/usr/sbin/nft",
         fmt::format("add table ip other; add chain ip other out {{ type nat hook output priority "
                     "-100; }}; add rule ip other out ip daddr {} dnat to {}",
                     alias_ip_, node_ip_)});
    ASSERT_TRUE(nat.ok() && nat->exit_code == 0) << (nat.ok() ? nat->err : "");
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, node_ip_.c_str(), &a.sin_addr);
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
    ASSERT_EQ(listen(listener_, 64), 0);
    socklen_t len = sizeof a;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    node_port_ = ntohs(a.sin_port);

    port_.cluster_ip = "10.43.250.1";
    port_.port = 80;
    port_.node_port = node_port_;
    port_.algorithm = Algorithm::kLeastConnections;
    for (int i = 1; i <= 3; ++i)
      port_.endpoints.push_back({.ip = fmt::format("10.42.250.{}", i), .port = 8080});
    auto b = SocketBalancer::Open({"127.0.0.1"});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    balancer_ = std::move(*b);
    // The address came after the balancer: it follows once told.
    EXPECT_TRUE(balancer_->SetNodeAddresses({"127.0.0.1", node_ip_, "::1"}));
    EXPECT_FALSE(balancer_->SetNodeAddresses({node_ip_, "127.0.0.1"}));
    ASSERT_TRUE(balancer_->Full({{"default/lc:http/tcp", port_}}).ok());
    auto attached = balancer_->AttachInterfaces("kiso-none");
    ASSERT_TRUE(attached.ok()) << attached.status().ToString();
    ASSERT_GE(*attached, 1);
  }
  void TearDown() override {
    balancer_.reset();
    for (int fd : clients_) close(fd);
    for (int fd : accepted_) close(fd);
    if (listener_ >= 0) close(listener_);
    // The pair first: a deleted namespace's links go later, from the
    // kernel's clean-up work, and the next test's SetUp reuses the names.
    (void)RunCommand({"/usr/sbin/ip", "link", "del", host_if_});
    (void)RunCommand({"/usr/sbin/ip", "netns", "del", ns_});
    (void)RunCommand({"/usr/sbin/nft", "delete", "table", "ip", ns_});
  }
  void Ip(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/sbin/ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv);
    ASSERT_TRUE(r.ok() && r->exit_code == 0) << fmt::format("{}", fmt::join(argv, " "));
  }
  // A connection from the other node to the node port; its index in
  // clients_ and accepted_.
  size_t Connect() {
    int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int there = open(fmt::format("/run/netns/{}", ns_).c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_EQ(setns(there, CLONE_NEWNET), 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // The other node's.
    EXPECT_EQ(setns(here, CLONE_NEWNET), 0);
    close(there);
    close(here);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(node_port_));
    inet_pton(AF_INET, alias_ip_.c_str(), &a.sin_addr);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
    clients_.push_back(fd);
    pollfd p{listener_, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 5000), 1);
    accepted_.push_back(accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC));
    return clients_.size() - 1;
  }
  std::vector<int64_t> Counts() const {
    std::vector<int64_t> out;
    for (const auto& e : port_.endpoints) out.push_back(balancer_->Active(e.ip, e.port));
    return out;
  }
  int Swept(std::chrono::seconds age) {
    auto n = balancer_->SweepRemotes(age);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? *n : -1;
  }
  // Waits (a FIN crosses a veth asynchronously) until the counts are `want`.
  bool CountsBecome(const std::vector<int64_t>& want) {
    for (int i = 0; i < 500 && Counts() != want; ++i) usleep(10000);
    return Counts() == want;
  }

  std::string ns_, host_if_, node_ip_, client_ip_, alias_ip_;
  int node_port_ = 0;
  int listener_ = -1;
  ServicePort port_;
  std::unique_ptr<SocketBalancer> balancer_;
  std::vector<int> clients_, accepted_;
};

TEST_F(FromOtherNodes, EachConnectionIsCountedToTheEndpointWithFewestUntilItEnds) {
  for (int i = 0; i < 6; ++i) Connect();
  EXPECT_EQ(Counts(), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(balancer_->Remotes(), 6);
  // The client ends one (its FIN, in at the node), the node ends another
  // (its FIN, out): each counted off once, whoever ends first.
  close(clients_[1]);
  clients_[1] = -1;
  ASSERT_TRUE(CountsBecome({2, 1, 2})) << fmt::format("{}", fmt::join(Counts(), ","));
  close(accepted_[2]);
  accepted_[2] = -1;
  ASSERT_TRUE(CountsBecome({2, 1, 1})) << fmt::format("{}", fmt::join(Counts(), ","));
  close(accepted_[1]);
  close(clients_[2]);
  accepted_[1] = clients_[2] = -1;
  // The next go to those with fewest.
  Connect();
  Connect();
  EXPECT_EQ(Counts(), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(balancer_->Remotes(), 6);
}

TEST_F(FromOtherNodes, TheSweepCountsOffWhatConntrackNoLongerHas) {
  // Conntrack follows this namespace's connections while a table uses it.
  auto nft = RunCommand({"/usr/sbin/nft", fmt::format("add table ip {0}; add chain ip {0} in {{ "
                                                      "type filter hook input priority 0; ct "
                                                      "state new counter; }}",
                                                      ns_)});
  ASSERT_TRUE(nft.ok() && nft->exit_code == 0) << (nft.ok() ? nft->err : "");
  Connect();
  Connect();
  EXPECT_EQ(Counts(), (std::vector<int64_t>{1, 1, 0}));
  EXPECT_EQ(Swept(std::chrono::seconds(0)), 0);  // Both live.
  // One's entry goes (as a timeout would take it): the sweep counts it off.
  const uint16_t first_port = [&] {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(clients_[0], reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }();
  auto deleted = DeleteFlows([&](const Flow& f) {
    return f.protocol == IPPROTO_TCP && f.sport == first_port &&
           f.dport == static_cast<uint16_t>(node_port_);
  });
  ASSERT_TRUE(deleted.ok() && *deleted == 1) << deleted.status().ToString();
  // Too young for a sweep that keeps what is younger than an hour.
  EXPECT_EQ(Swept(std::chrono::hours(1)), 0);
  EXPECT_EQ(Swept(std::chrono::seconds(0)), 1);
  EXPECT_EQ(Counts(), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(balancer_->Remotes(), 1);
}

// The tc links of the least-connections programs on this machine now (any
// process's), by link id.
std::set<int64_t> TcLinks() {
  auto progs = RunCommand({"/usr/sbin/bpftool", "-j", "prog", "show"});
  auto links = RunCommand({"/usr/sbin/bpftool", "-j", "link", "show"});
  std::set<int64_t> ours, out;
  if (!progs.ok() || !links.ok()) return out;
  const auto prog_list = boost::json::parse(progs->out);
  const auto link_list = boost::json::parse(links->out);
  for (const auto& p : prog_list.as_array()) {
    const auto* name = p.as_object().if_contains("name");
    if (name && name->is_string() && name->get_string().starts_with("kiso_lb_tc"))
      ours.insert(p.at("id").to_number<int64_t>());
  }
  for (const auto& l : link_list.as_array()) {
    const auto* prog = l.as_object().if_contains("prog_id");
    if (prog && ours.count(prog->to_number<int64_t>())) out.insert(l.at("id").to_number<int64_t>());
  }
  return out;
}

TEST_F(FromOtherNodes, DetachedWithTheBalancer) {
  Connect();
  EXPECT_EQ(balancer_->Remotes(), 1);
  auto attached = balancer_->AttachInterfaces("kiso-none");  // None new: the count.
  ASSERT_TRUE(attached.ok());
  auto before = TcLinks();
  ASSERT_GE(before.size(), 2U * static_cast<size_t>(*attached));
  balancer_.reset();
  // Its links (an ingress and an egress one per interface) went with it.
  size_t gone = 0;
  for (int64_t id : before) gone += TcLinks().count(id) == 0 ? 1 : 0;
  EXPECT_GE(gone, 2U * static_cast<size_t>(*attached));
}

}  // namespace
}  // namespace kiso::network::proxy
