#include "scheduler/framework.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace kiso::scheduler {
namespace {

namespace json = boost::json;

NodeInfo Node(const std::string& name, int64_t milli_cpu = 4000, int64_t memory = 8LL << 30,
              int64_t pods = 110) {
  NodeInfo n;
  n.name = name;
  n.allocatable = {milli_cpu, memory, 100LL << 30, pods};
  n.labels = {{"kubernetes.io/hostname", name}};
  return n;
}

PodInfo Pod(const std::string& name, int64_t milli_cpu = 0, int64_t memory = 0) {
  PodInfo p;
  p.ns = "default";
  p.name = name;
  p.requests = {milli_cpu, memory, 0, 1};
  return p;
}

class FrameworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterBuiltins(registry_);
    auto f = Framework::Create(registry_, Profile{});
    ASSERT_TRUE(f.ok());
    framework_ = std::move(*f);
  }
  FilterResult Filter(std::string_view plugin, const PodInfo& pod, const NodeInfo& node) {
    auto p = registry_.NewFilter(plugin);
    EXPECT_TRUE(p.ok());
    return (*p)->Filter(pod, node, CycleState());
  }
  Registry registry_;
  std::unique_ptr<Framework> framework_;
};

TEST_F(FrameworkTest, RegistryRefusesDuplicatesAndUnknownNames) {
  EXPECT_EQ(registry_.RegisterFilter("NodeResourcesFit", nullptr).code(), Code::kAlreadyExists);
  EXPECT_EQ(registry_.NewScore("Nope").status().code(), Code::kNotFound);
  Profile bad;
  bad.filters = {"Nope"};
  EXPECT_FALSE(Framework::Create(registry_, bad).ok());
}

TEST_F(FrameworkTest, ResourcesFitCountsEveryResourceAndPods) {
  NodeInfo node = Node("n", 1000, 1LL << 30, 2);
  EXPECT_TRUE(Filter("NodeResourcesFit", Pod("a", 600, 1 << 29), node).fits);
  AddPod(node, Pod("a", 600, 1 << 29));
  auto r = Filter("NodeResourcesFit", Pod("b", 600, 1LL << 30), node);
  EXPECT_FALSE(r.fits);
  EXPECT_EQ(r.reasons, (std::vector<std::string>{"Insufficient cpu", "Insufficient memory"}));
  AddPod(node, Pod("c"));
  EXPECT_EQ(Filter("NodeResourcesFit", Pod("d"), node).reasons,
            (std::vector<std::string>{"Too many pods"}));
  RemovePod(node, Pod("c"));
  EXPECT_TRUE(Filter("NodeResourcesFit", Pod("d", 400), node).fits);
}

TEST_F(FrameworkTest, TaintsTolerationsAffinityPortsUnschedulable) {
  NodeInfo node = Node("n");
  node.taints = {{"dedicated", "db", "NoSchedule"}};
  PodInfo pod = Pod("p");
  EXPECT_EQ(Filter("TaintToleration", pod, node).reasons,
            (std::vector<std::string>{"node(s) had untolerated taint {dedicated: db}"}));
  pod.tolerations = {{"dedicated", "Equal", "db", "NoSchedule"}};
  EXPECT_TRUE(Filter("TaintToleration", pod, node).fits);
  node.taints = {{"x", "", "PreferNoSchedule"}};
  EXPECT_TRUE(Filter("TaintToleration", Pod("q"), node).fits);

  PodInfo picky = Pod("picky");
  picky.node_selector = {{"disk", "ssd"}};
  EXPECT_FALSE(Filter("NodeAffinity", picky, node).fits);
  node.labels["disk"] = "ssd";
  EXPECT_TRUE(Filter("NodeAffinity", picky, node).fits);
  picky.required_affinity = {{{"zone", "In", {"a", "b"}}}, {{"gpu", "Exists", {}}}};
  EXPECT_FALSE(Filter("NodeAffinity", picky, node).fits);
  node.labels["gpu"] = "1";
  EXPECT_TRUE(Filter("NodeAffinity", picky, node).fits);

  PodInfo web = Pod("web");
  web.host_ports = {{"TCP", "", 80}};
  EXPECT_TRUE(Filter("NodePorts", web, node).fits);
  AddPod(node, web);
  PodInfo web2 = Pod("web2");
  web2.host_ports = {{"TCP", "10.0.0.1", 80}};
  EXPECT_FALSE(Filter("NodePorts", web2, node).fits);
  web2.host_ports = {{"UDP", "", 80}};
  EXPECT_TRUE(Filter("NodePorts", web2, node).fits);

  node.unschedulable = true;
  EXPECT_EQ(Filter("NodeUnschedulable", Pod("u"), node).reasons,
            (std::vector<std::string>{"node(s) were unschedulable"}));
  PodInfo named = Pod("named");
  named.node_name = "other";
  EXPECT_FALSE(Filter("NodeName", named, node).fits);
}

TEST_F(FrameworkTest, NodeAffinityMatchFieldsNamesTheNode) {
  // A DaemonSet's pod: `matchFields metadata.name In [node]`, parsed from the object.
  PodInfo daemon = ParsePod(json::parse(R"({"metadata": {"name": "d"}, "spec": {"affinity":
      {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms":
      [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}}}})"));
  ASSERT_EQ(daemon.required_affinity.size(), 1u);
  EXPECT_TRUE(daemon.required_affinity[0][0].field);
  EXPECT_FALSE(Filter("NodeAffinity", daemon, Node("n1")).fits);
  EXPECT_TRUE(Filter("NodeAffinity", daemon, Node("n2")).fits);
  // A label of that name is no field.
  NodeInfo impostor = Node("n3");
  impostor.labels["metadata.name"] = "n2";
  EXPECT_FALSE(Filter("NodeAffinity", daemon, impostor).fits);

  // Scheduling tries the named node only; when it does not fit, every node is in the message.
  std::vector<NodeInfo> nodes = {Node("n1"), Node("n2", 1000), Node("n3")};
  std::vector<const NodeInfo*> ptrs = {&nodes[0], &nodes[1], &nodes[2]};
  daemon.requests.milli_cpu = 500;
  auto chosen = framework_->Schedule(daemon, ptrs);
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ(*chosen, "n2");
  daemon.requests.milli_cpu = 2000;
  auto none = framework_->Schedule(daemon, ptrs);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node "
            "affinity/selector.");
  // A term without a node name leaves every node possible.
  daemon.required_affinity.push_back({{"disk", "Exists", {}, false}});
  EXPECT_FALSE(RequiredNodeNames(daemon).has_value());
}

TEST_F(FrameworkTest, ScheduleReportsUpstreamMessageAndPrefersLeastAllocated) {
  std::vector<NodeInfo> nodes = {Node("a", 1000), Node("b", 1000), Node("c", 1000)};
  nodes[2].taints = {{"k", "v", "NoSchedule"}};
  AddPod(nodes[0], Pod("busy", 800));
  std::vector<const NodeInfo*> ptrs = {&nodes[0], &nodes[1], &nodes[2]};
  auto chosen = framework_->Schedule(Pod("p", 100), ptrs);
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ(*chosen, "b");  // Least allocated; c is tainted.
  // Reasons are sorted as whole strings, counts included (upstream FitError.Error).
  auto none = framework_->Schedule(Pod("big", 1100), ptrs);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu.");
  auto empty = framework_->Schedule(Pod("p"), std::vector<const NodeInfo*>{});
  EXPECT_FALSE(empty.ok());
}

TEST(ParsePod, SumsRequestsTakesLargerInitAndReadsConstraints) {
  auto pod = json::parse(R"({"metadata":{"name":"p","namespace":"ns"},"spec":{
      "containers":[{"name":"a","resources":{"requests":{"cpu":"250m","memory":"64Mi"}},
                     "ports":[{"containerPort":80,"hostPort":8080}]},
                    {"name":"b","resources":{"requests":{"cpu":"0.5"}}}],
      "initContainers":[{"name":"i","resources":{"requests":{"cpu":"2"}}}],
      "nodeSelector":{"disk":"ssd"},
      "tolerations":[{"key":"k","operator":"Exists","effect":"NoSchedule"}]}})");
  PodInfo p = ParsePod(pod);
  EXPECT_EQ(p.Key(), "ns/p");
  EXPECT_EQ(p.requests.milli_cpu, 2000);
  EXPECT_EQ(p.requests.memory, 64LL << 20);
  EXPECT_EQ(p.requests.pods, 1);
  ASSERT_EQ(p.host_ports.size(), 1u);
  EXPECT_EQ(p.host_ports[0].port, 8080);
  EXPECT_EQ(p.node_selector.at("disk"), "ssd");
  EXPECT_EQ(p.scheduler_name, "default-scheduler");
  ASSERT_EQ(p.tolerations.size(), 1u);
  EXPECT_TRUE(p.tolerations[0].Tolerates({"k", "x", "NoSchedule"}));
  auto node = json::parse(R"({"metadata":{"name":"n"},"spec":{"unschedulable":true},
      "status":{"allocatable":{"cpu":"4","memory":"16Gi","pods":"110"}}})");
  NodeInfo n = ParseNode(node);
  EXPECT_TRUE(n.unschedulable);
  EXPECT_EQ(n.allocatable.milli_cpu, 4000);
  EXPECT_EQ(n.allocatable.memory, 16LL << 30);
  EXPECT_EQ(n.allocatable.pods, 110);
}

}  // namespace
}  // namespace kiso::scheduler
