#include "network/policy/ebpf_enforcer.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <random>

#include "common/process.h"
#include "network/policy/test_cluster.h"

namespace kiso::network::policy {
namespace {

TEST(Blocks, CoverRangesExactly) {
  using B = std::vector<std::pair<uint32_t, uint8_t>>;
  EXPECT_EQ(Blocks(0, UINT32_MAX, 32), (B{{0, 0}}));
  EXPECT_EQ(Blocks(10, 10, 32), (B{{10, 32}}));
  EXPECT_EQ(Blocks(8000, 8010, 16), (B{{8000, 13}, {8008, 15}, {8010, 16}}));
  EXPECT_EQ(Blocks(0, 65535, 16), (B{{0, 0}}));
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    uint32_t a = rng() % 70000, b = a + rng() % 5000;
    uint64_t covered = 0, next = a;
    for (auto [at, bits] : Blocks(a, b, 32)) {
      EXPECT_EQ(at, next);
      uint64_t size = uint64_t{1} << (32 - bits);
      EXPECT_EQ(at % size, 0u);
      covered += size;
      next = at + size;
    }
    EXPECT_EQ(covered, uint64_t{b} - a + 1);
  }
}

// What the program decides (bpf/policy.bpf.c, for a flow's first packet),
// over the entries as data: longest-prefix matches as the kernel's trie makes them.
bool Decide(const BpfEntries& e, uint32_t src, uint32_t dst, uint8_t protocol, uint16_t port) {
  auto allows = [&](uint32_t slot, uint32_t peer) {
    for (int bits = 32; bits >= 0; --bits) {
      uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
      auto it = e.peers.find({slot, peer & mask, static_cast<uint8_t>(bits)});
      if (it == e.peers.end()) continue;
      if (it->second == 0) return true;
      for (int pb = 16; pb >= 0; --pb) {
        uint16_t pmask = pb == 0 ? 0 : static_cast<uint16_t>(0xffff << (16 - pb));
        if (e.ports.count({it->second, protocol, static_cast<uint16_t>(port & pmask),
                           static_cast<uint8_t>(pb)}))
          return true;
      }
      return false;
    }
    return false;
  };
  auto s = e.pods.find(src);
  auto d = e.pods.find(dst);
  if (s != e.pods.end() && s->second.second != 0 && !allows(s->second.second, dst)) return false;
  if (d != e.pods.end() && d->second.first != 0 && !allows(d->second.first, src)) return false;
  return true;
}

// The maps say what the model says: every policy of a random series, probed
// from every pod to every pod (and outside addresses) on every port tried.
TEST(BpfEntries, DecideAsTheModelDoes) {
  Cluster cluster = TestCluster();
  std::mt19937 rng(11);
  const std::vector<std::string> peers = {
      R"({"podSelector":{"matchLabels":{"pod":"b"}}})",
      R"({"namespaceSelector":{"matchLabels":{"ns":"y"}}})",
      R"({"namespaceSelector":{},"podSelector":{"matchLabels":{"pod":"c"}}})",
      R"({"ipBlock":{"cidr":"10.1.0.0/16","except":["10.1.2.0/24","10.1.3.3/32"]}})",
      R"({"ipBlock":{"cidr":"10.1.2.0/23"}})",
      R"({"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}}})",
  };
  const std::vector<std::string> ports = {R"({"port":80})",
                                          R"({"port":81,"protocol":"UDP"})",
                                          R"({"port":"serve-81-tcp"})",
                                          R"({"port":"dns","protocol":"UDP"})",
                                          R"({"port":79,"endPort":81,"protocol":"SCTP"})",
                                          R"({"protocol":"UDP"})"};
  BpfTables tables;
  for (int round = 0; round < 60; ++round) {
    Model model;
    int policies = 1 + static_cast<int>(rng() % 4);
    for (int p = 0; p < policies; ++p) {
      std::string rules[2];
      for (int dir = 0; dir < 2; ++dir) {
        int n = static_cast<int>(rng() % 3);
        for (int r = 0; r < n; ++r) {
          std::string peer_list, port_list;
          for (int k = static_cast<int>(rng() % 3); k > 0; --k)
            peer_list += (peer_list.empty() ? "" : ",") + peers[rng() % peers.size()];
          for (int k = static_cast<int>(rng() % 3); k > 0; --k)
            port_list += (port_list.empty() ? "" : ",") + ports[rng() % ports.size()];
          rules[dir] +=
              fmt::format("{}{{\"{}\":[{}],\"ports\":[{}]}}", rules[dir].empty() ? "" : ",",
                          dir == 0 ? "from" : "to", peer_list, port_list);
        }
      }
      const char* types[] = {R"(["Ingress"])", R"(["Egress"])", R"(["Ingress","Egress"])"};
      const char* selectors[] = {"{}", R"({"matchLabels":{"pod":"a"}})",
                                 R"({"matchLabels":{"pod":"b"}})"};
      const char* ns[] = {"x", "y"};
      std::string text = fmt::format(
          R"({{"metadata":{{"namespace":"{}"}},"spec":{{"podSelector":{},"policyTypes":{},
          "ingress":[{}],"egress":[{}]}}}})",
          ns[rng() % 2], selectors[rng() % 3], types[rng() % 3], rules[0], rules[1]);
      auto compiled = Compile(boost::json::parse(text), cluster);
      ASSERT_TRUE(compiled.ok()) << text << ": " << compiled.status().ToString();
      model[fmt::format("p{}", p)] = *compiled;
    }
    // Every other round from scratch; else changed in place from the last round's.
    if (round % 2 == 0) tables = {};
    tables.Reset(model);
    const BpfEntries& e = tables.entries();
    std::vector<uint32_t> addresses{0x08080808, 0x0a010204};
    for (const auto& [key, pod] : cluster.pods) addresses.push_back(pod.ip);
    for (uint32_t src : addresses) {
      for (uint32_t dst : addresses) {
        for (auto [protocol, port] : std::vector<std::pair<uint8_t, uint16_t>>{
                 {kTcp, 80}, {kTcp, 81}, {kUdp, 81}, {kUdp, 10053}, {kSctp, 80}, {kUdp, 7}}) {
          ASSERT_EQ(Decide(e, src, dst, protocol, port), Allowed(model, src, dst, protocol, port))
              << "round " << round << ": " << FormatIp(src) << " → " << FormatIp(dst) << " "
              << ProtocolName(protocol) << "/" << port;
        }
      }
    }
  }
  // Slots and port sets no longer used are let go.
  auto changes = tables.Reset({});
  EXPECT_TRUE(tables.entries().pods.empty());
  EXPECT_TRUE(tables.entries().peers.empty());
  EXPECT_TRUE(tables.entries().ports.empty());
  EXPECT_EQ(tables.port_sets(), 0u);
  EXPECT_TRUE(changes.put.peers.empty());
}

// The program loads, attaches to a bridge and its ports, and goes — in a
// network namespace of the test's own, gone with the process.
TEST(EbpfEnforcer, AttachesToTheBridgeAndItsPortsAndDetaches) {
  if (geteuid() != 0) GTEST_SKIP() << "tc and BPF need root";
  // A network namespace of its own, and a mount namespace whose /sys shows it.
  ASSERT_EQ(unshare(CLONE_NEWNET | CLONE_NEWNS), 0) << strerror(errno);
  ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << strerror(errno);
  ASSERT_EQ(umount2("/sys", MNT_DETACH), 0) << strerror(errno);
  ASSERT_EQ(mount("sysfs", "/sys", "sysfs", 0, nullptr), 0) << strerror(errno);
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"/usr/sbin/ip", "link", "add", "kisotestbr", "type", "bridge"},
           {"/usr/sbin/ip", "link", "add", "kisotestv0", "type", "veth", "peer", "kisotestv1"},
           {"/usr/sbin/ip", "link", "set", "kisotestv0", "master", "kisotestbr"}}) {
    auto r = RunCommand(cmd);
    ASSERT_TRUE(r.ok() && r->exit_code == 0) << cmd[3];
  }
  auto enforcer = NewEnforcer("ebpf", {"kisotestbr"});
  ASSERT_TRUE(enforcer.ok());
  Cluster cluster = TestCluster();
  Model model;
  model["x/deny"] = *Compile(
      boost::json::parse(R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{}}})"), cluster);
  Status s = (*enforcer)->Full(model);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto filters = [](const std::string& dev, const char* where) {
    auto r = RunCommand({"/usr/sbin/tc", "filter", "show", "dev", dev, where});
    return r.ok() ? r->out : std::string();
  };
  EXPECT_NE(filters("kisotestbr", "ingress").find("kiso_np_decide"), std::string::npos);
  EXPECT_NE(filters("kisotestv0", "egress").find("kiso_np_decide"), std::string::npos);
  // A new port gets it too; a second Full replaces rather than adds.
  ASSERT_EQ(RunCommand({"/usr/sbin/ip", "link", "add", "kisotestv2", "master", "kisotestbr", "type",
                        "veth", "peer", "kisotestv3"})
                ->exit_code,
            0);
  ASSERT_TRUE((*enforcer)->Update(model, {}, {"x/deny"}).ok());
  EXPECT_NE(filters("kisotestv2", "egress").find("kiso_np_decide"), std::string::npos);
  ASSERT_TRUE((*enforcer)->Full(model).ok());
  std::string listed = filters("kisotestv0", "egress");
  EXPECT_EQ(listed.find("handle 0x6b69"), listed.rfind("handle 0x6b69")) << listed;
  ASSERT_TRUE(RemoveAll({"kisotestbr"}).ok());
  EXPECT_EQ(filters("kisotestbr", "ingress").find("kiso_np_decide"), std::string::npos);
  EXPECT_EQ(filters("kisotestv0", "egress").find("kiso_np_decide"), std::string::npos);
}

}  // namespace
}  // namespace kiso::network::policy
