// BridgeNetwork and HostLocalIpam: the addresses host-local would give, kept
// in its format (the real plugin is run against the same directory), and a
// pod's interface as the bridge plugin makes it, in namespaces the test makes.
#include "network/bridge.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/process.h"
#include "network/cni.h"
#include "support/temp_dir.h"

namespace kiso::network {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Ipv4Cidr Range(const std::string& text) { return *Ipv4Cidr::Parse(text); }

std::string Sh(const std::vector<std::string>& argv) {
  auto r = RunCommand(argv);
  EXPECT_TRUE(r.ok() && r->exit_code == 0)
      << fmt::format("{}: {}", fmt::join(argv, " "), r.ok() ? r->err : r.status().ToString());
  return r.ok() ? r->out : "";
}

TEST(HostLocalIpam, GivesTheRangeRoundRobinWithoutTheGatewayAndRunsOut) {
  testing::TempDir dir("ipam");
  HostLocalIpam ipam(dir.File("kiso"), Range("10.240.0.0/29"));  // Hosts .1-.6; .1: gateway.
  std::vector<std::string> given;
  for (int i = 0; i < 5; ++i) {
    auto ip = ipam.Allocate(fmt::format("pod{}", i), "eth0");
    ASSERT_TRUE(ip.ok()) << ip.status().ToString();
    given.push_back(FormatIpv4(*ip));
  }
  EXPECT_EQ(given, (std::vector<std::string>{"10.240.0.2", "10.240.0.3", "10.240.0.4", "10.240.0.5",
                                             "10.240.0.6"}));
  EXPECT_EQ(Read(dir.File("kiso/10.240.0.3")), "pod1\r\neth0");
  EXPECT_EQ(Read(dir.File("kiso/last_reserved_ip.0")), "10.240.0.6");
  // The same (id, ifname) again: its address, not a second one.
  EXPECT_EQ(FormatIpv4(*ipam.Allocate("pod2", "eth0")), "10.240.0.4");

  auto none = ipam.Allocate("pod5", "eth0");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kResourceExhausted);
  EXPECT_NE(none.status().message().find("10.240.0.2-10.240.0.6"), std::string::npos)
      << none.status().message();

  // Freed addresses come back after the last reserved one, wrapping round.
  ASSERT_TRUE(ipam.Release("pod3", "eth0").ok());
  ASSERT_TRUE(ipam.Release("pod1", "eth0", *ParseIpv4("10.240.0.3")).ok());
  EXPECT_FALSE(fs::exists(dir.File("kiso/10.240.0.3")));
  EXPECT_EQ(FormatIpv4(*ipam.Allocate("pod6", "eth0")), "10.240.0.3");
  EXPECT_EQ(FormatIpv4(*ipam.Allocate("pod7", "eth0")), "10.240.0.5");
  // A wrong hint, an unknown id and a second release change nothing else.
  ASSERT_TRUE(ipam.Release("pod0", "eth0", *ParseIpv4("10.240.0.4")).ok());
  ASSERT_TRUE(ipam.Release("nobody", "eth0").ok());
  ASSERT_TRUE(ipam.Release("pod0", "eth0").ok());
  EXPECT_FALSE(fs::exists(dir.File("kiso/10.240.0.2")));
  EXPECT_TRUE(fs::exists(dir.File("kiso/10.240.0.4")));
  EXPECT_EQ(Read(dir.File("kiso/10.240.0.4")), "pod2\r\neth0");
}

TEST(HostLocalIpam, SharesItsDirectoryWithTheHostLocalPlugin) {
  const std::string plugin = "/usr/lib/cni/host-local";
  ASSERT_EQ(access(plugin.c_str(), X_OK), 0) << "containernetworking-plugins";
  testing::TempDir dir("ipam");
  HostLocalIpam ipam(dir.File("ipam/kiso"), Range("10.240.1.0/24"));
  auto invoke = [&](const std::string& command, const std::string& id) {
    CommandOptions o;
    o.stdin_data = json::serialize(json::object{
        {"cniVersion", "1.0.0"},
        {"name", "kiso"},
        {"ipam", json::object{{"type", "host-local"},
                              {"ranges",
                               json::array{json::array{json::object{{"subnet", "10.240.1.0/24"}}}}},
                              {"dataDir", dir.File("ipam")}}}});
    o.env = {{"CNI_COMMAND", command},
             {"CNI_CONTAINERID", id},
             {"CNI_NETNS", "/dev/null"},
             {"CNI_IFNAME", "eth0"},
             {"CNI_PATH", "/usr/lib/cni"}};
    auto r = RunCommand({plugin}, o);
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->out + r->err : "");
    return r.ok() ? r->out : "";
  };
  ASSERT_EQ(FormatIpv4(*ipam.Allocate("ours", "eth0")), "10.240.1.2");
  // The plugin sees ours taken and goes on after it; ours sees the plugin's.
  auto theirs = json::parse(invoke("ADD", "theirs"));
  EXPECT_EQ(theirs.at("ips").at(0).at("address"), "10.240.1.3/24");
  EXPECT_EQ(FormatIpv4(*ipam.Allocate("ours2", "eth0")), "10.240.1.4");
  // Each releases what the other gave.
  ASSERT_TRUE(ipam.Release("theirs", "eth0").ok());
  EXPECT_FALSE(fs::exists(dir.File("ipam/kiso/10.240.1.3")));
  invoke("DEL", "ours");
  EXPECT_FALSE(fs::exists(dir.File("ipam/kiso/10.240.1.2")));
  EXPECT_TRUE(fs::exists(dir.File("ipam/kiso/10.240.1.4")));
}

// Two network namespaces and a bridge of the test's own, removed whatever happens.
class BridgeNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& ns : {ns_a_, ns_b_}) {
      (void)RunCommand({"/usr/sbin/ip", "netns", "del", ns});  // A crashed run's.
      Sh({"/usr/sbin/ip", "netns", "add", ns});
    }
    (void)CniNetwork::DeleteLink(bridge_);
  }
  void TearDown() override {
    for (const auto& ns : {ns_a_, ns_b_}) (void)RunCommand({"/usr/sbin/ip", "netns", "del", ns});
    (void)CniNetwork::DeleteLink(bridge_);
  }
  static std::string Path(const std::string& ns) { return "/run/netns/" + ns; }
  std::string In(const std::string& ns, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"/usr/sbin/ip", "netns", "exec", ns});
    return Sh(argv);
  }

  const std::string ns_a_ = fmt::format("kisobr-a-{}", getpid());
  const std::string ns_b_ = fmt::format("kisobr-b-{}", getpid());
  // Of this process: ctest runs the tests of this file at once, in processes of their own.
  const std::string bridge_ = fmt::format("kisobr{}", getpid());
  testing::TempDir dir_{"bridge"};
};

TEST_F(BridgeNetworkTest, AttachesPodsThatReachTheGatewayAndEachOtherAndDetachesThem) {
  // Made before the first pod, as the service proxy makes it: no MAC of its own yet.
  Sh({"/usr/sbin/ip", "link", "add", "name", bridge_, "type", "bridge"});
  Sh({"/usr/sbin/ip", "link", "set", bridge_, "up"});
  BridgeNetwork net({bridge_, Range("10.240.2.0/24"), 1400, dir_.File("ipam/kiso")});
  auto a = net.Add("pod-a", Path(ns_a_));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = net.Add("pod-b", Path(ns_b_));
  ASSERT_TRUE(b.ok()) << b.status().ToString();

  // The bridge plugin's result: the bridge, the node's end, the pod's end.
  const auto& ifs = a->at("interfaces").as_array();
  ASSERT_EQ(ifs.size(), 3u);
  EXPECT_EQ(ifs[0].at("name").as_string(), bridge_);
  EXPECT_EQ(ifs[0].at("mac"), "0a:58:0a:f0:02:01");
  const std::string veth(ifs[1].at("name").as_string());
  EXPECT_TRUE(veth.starts_with("veth")) << veth;
  EXPECT_EQ(ifs[2].at("name"), "eth0");
  EXPECT_EQ(ifs[2].at("mac"), "0a:58:0a:f0:02:02");
  EXPECT_EQ(ifs[2].at("sandbox").as_string(), Path(ns_a_));
  EXPECT_EQ(a->at("ips").at(0).at("address"), "10.240.2.2/24");
  EXPECT_EQ(a->at("ips").at(0).at("gateway"), "10.240.2.1");
  EXPECT_EQ(a->at("ips").at(0).at("interface"), 2);
  EXPECT_EQ(b->at("ips").at(0).at("address"), "10.240.2.3/24");

  // What the node and the pod see.
  EXPECT_NE(Sh({"/usr/sbin/ip", "-o", "addr", "show", bridge_})
                .find("inet 10.240.2.1/24 brd "
                      "10.240.2.255"),
            std::string::npos);
  EXPECT_EQ(Read("/sys/class/net/" + bridge_ + "/address"), "0a:58:0a:f0:02:01\n");
  EXPECT_EQ(Read("/sys/class/net/" + bridge_ + "/addr_assign_type"), "3\n");  // NET_ADDR_SET.
  std::string port = Sh({"/usr/sbin/ip", "-d", "link", "show", veth});
  EXPECT_NE(port.find("master " + bridge_), std::string::npos) << port;
  EXPECT_NE(port.find("hairpin on"), std::string::npos) << port;
  EXPECT_NE(port.find("mtu 1400"), std::string::npos) << port;
  std::string eth0 = In(ns_a_, {"/usr/sbin/ip", "-o", "addr", "show", "eth0"});
  EXPECT_NE(eth0.find("inet 10.240.2.2/24 brd 10.240.2.255"), std::string::npos) << eth0;
  EXPECT_NE(In(ns_a_, {"/usr/sbin/ip", "route"}).find("default via 10.240.2.1 dev eth0"),
            std::string::npos);
  EXPECT_EQ(In(ns_a_, {"/usr/sbin/sysctl", "-n", "net.ipv4.conf.eth0.arp_notify"}), "1\n");
  In(ns_a_, {"/usr/bin/ping", "-c", "1", "-W", "5", "10.240.2.1"});
  In(ns_a_, {"/usr/bin/ping", "-c", "1", "-W", "5", "10.240.2.3"});

  // A second ADD finds eth0 there: an error, and (as the DEL a runtime sends
  // after a failed ADD) nothing left of the pod's attachment.
  auto again = net.Add("pod-a", Path(ns_a_));
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists) << again.status().ToString();
  EXPECT_EQ(RunCommand({"/usr/sbin/ip", "link", "show", veth})->exit_code, 1) << "veth left";
  EXPECT_EQ(In(ns_a_, {"/usr/sbin/ip", "-o", "link"}).find("eth0"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_.File("ipam/kiso/10.240.2.2")));
  EXPECT_TRUE(fs::exists(dir_.File("ipam/kiso/10.240.2.3")));

  ASSERT_TRUE(net.Del("pod-a", Path(ns_a_), "10.240.2.2").ok()) << "a DEL after that";
  // A namespace that is gone: its address is still freed.
  Sh({"/usr/sbin/ip", "netns", "del", ns_b_});
  ASSERT_TRUE(net.Del("pod-b", Path(ns_b_)).ok());
  EXPECT_FALSE(fs::exists(dir_.File("ipam/kiso/10.240.2.3")));
  // A namespace file a crash left unmounted (a plain file): nothing to
  // delete there, the address still freed.
  auto c = net.Add("pod-c", Path(ns_a_));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const std::string plain = dir_.File("net");
  std::ofstream(plain) << "";
  ASSERT_TRUE(net.Del("pod-c", plain).ok());
  EXPECT_FALSE(fs::exists(dir_.File("ipam/kiso/10.240.2.4")));
  ASSERT_TRUE(net.Del("pod-c", Path(ns_a_)).ok());
  auto bad = net.Add("pod-c", Path(ns_b_));
  EXPECT_EQ(bad.status().code(), Code::kNotFound) << bad.status().ToString();
  EXPECT_FALSE(fs::exists(dir_.File("ipam/kiso/10.240.2.5"))) << "the failed ADD's address";
}

// Someone else's list runs its plugins; kiso's own does the bridge's work
// itself and runs portmap only for a pod with host ports.
TEST_F(BridgeNetworkTest, KisosListAttachesWithoutThePluginsAndAnotherListWithThem) {
  CniOptions options;
  options.bridge = bridge_;
  options.pod_cidr = "10.240.3.0/24";
  options.cache_dir = dir_.File("cni");
  options.conflist = dir_.File("cni/10-kiso.conflist");
  auto ours = CniNetwork::Create(options);
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  auto a = (*ours)->Add("pod-a", Path(ns_a_));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->ip, "10.240.3.2");
  auto entry = json::parse(Read(dir_.File("cni/results/pod-a")));
  EXPECT_EQ(entry.at("bridge"), "kiso");
  EXPECT_EQ(entry.at("ports"), false);
  EXPECT_EQ((*ours)->Cached("pod-a")->ip, "10.240.3.2");
  ASSERT_TRUE((*ours)->Del("pod-a", Path(ns_a_)).ok());
  EXPECT_TRUE((*ours)->Attached().empty());

  // A list of someone else's: the bridge and host-local plugins themselves.
  std::ofstream(dir_.File("custom.conflist")) << json::serialize(json::object{
      {"cniVersion", "1.0.0"},
      {"name", "custom"},
      {"plugins", json::array{json::object{
                      {"type", "bridge"},
                      {"bridge", bridge_},
                      {"isGateway", true},
                      {"ipam", json::object{{"type", "host-local"},
                                            {"ranges", json::array{json::array{json::object{
                                                           {"subnet", "10.240.4.0/24"}}}}},
                                            {"dataDir", dir_.File("custom-ipam")}}}}}}});
  options.conflist = dir_.File("custom.conflist");
  options.cache_dir = dir_.File("custom");
  (void)CniNetwork::DeleteLink(bridge_);  // The plugin gives it the list's gateway.
  auto theirs = CniNetwork::Create(options);
  ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();
  auto b = (*theirs)->Add("pod-b", Path(ns_b_));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->ip, "10.240.4.2");
  EXPECT_FALSE(json::parse(Read(dir_.File("custom/results/pod-b"))).as_object().contains("bridge"));
  EXPECT_EQ(Read(dir_.File("custom-ipam/custom/10.240.4.2")), "pod-b\r\neth0");
  ASSERT_TRUE((*theirs)->Del("pod-b", Path(ns_b_)).ok());
  EXPECT_FALSE(fs::exists(dir_.File("custom-ipam/custom/10.240.4.2")));
  EXPECT_EQ(In(ns_b_, {"/usr/sbin/ip", "-o", "link"}).find("eth0"), std::string::npos);
}

}  // namespace
}  // namespace kiso::network
