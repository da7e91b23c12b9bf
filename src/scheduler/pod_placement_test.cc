#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <map>
#include <set>

#include "scheduler/framework.h"

namespace kiso::scheduler {
namespace {

namespace json = boost::json;

// Three zones of two nodes each: z0: n0 n1, z1: n2 n3, z2: n4 n5.
class PodPlacementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterBuiltins(registry_);
    auto f = Framework::Create(registry_, Profile{});
    ASSERT_TRUE(f.ok());
    framework_ = std::move(*f);
    for (int i = 0; i < 6; ++i) {
      NodeInfo n;
      n.name = "n" + std::to_string(i);
      n.labels = {{"kubernetes.io/hostname", n.name},
                  {"topology.kubernetes.io/zone", "z" + std::to_string(i / 2)}};
      n.allocatable = {4000, 8LL << 30, 100LL << 30, 110};
      nodes_.push_back(std::move(n));
    }
  }
  // A pod from its manifest's `metadata.labels` and `spec` (JSON text).
  static PodInfo Pod(const std::string& name, const std::string& labels,
                     const std::string& spec = "{}", const std::string& ns = "default") {
    auto v = json::parse(R"({"metadata":{"name":")" + name + R"(","namespace":")" + ns +
                         R"(","labels":)" + labels + R"(},"spec":)" + spec + "}");
    return ParsePod(v);
  }
  std::vector<const NodeInfo*> All() const {
    std::vector<const NodeInfo*> out;
    for (const auto& n : nodes_) out.push_back(&n);
    return out;
  }
  // Schedules and places the pod (over `snapshot` when given, as the scheduler
  // keeps one); the node's name or the error.
  std::string Place(const PodInfo& pod, const NodeSnapshot* snapshot = nullptr) {
    auto chosen = snapshot ? framework_->Schedule(pod, *snapshot, &namespaces_)
                           : framework_->Schedule(pod, All(), &namespaces_);
    if (!chosen.ok()) return chosen.status().message();
    for (auto& n : nodes_) {
      if (n.name == *chosen) AddPod(n, pod);
    }
    return *chosen;
  }

  Registry registry_;
  std::unique_ptr<Framework> framework_;
  std::vector<NodeInfo> nodes_;
  NamespaceLabels namespaces_;
};

constexpr const char* kAntiByHost = R"({"affinity":{"podAntiAffinity":{
  "requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":{"app":"web"}},
  "topologyKey":"kubernetes.io/hostname"}]}}})";

TEST_F(PodPlacementTest, RequiredAntiAffinityPutsEachPodOnItsOwnNode) {
  std::set<std::string> used;
  for (int i = 0; i < 6; ++i) {
    std::string node = Place(Pod("web-" + std::to_string(i), R"({"app":"web"})", kAntiByHost));
    ASSERT_EQ(node.substr(0, 1), "n") << node;
    EXPECT_TRUE(used.insert(node).second) << node << " twice";
  }
  EXPECT_EQ(Place(Pod("web-6", R"({"app":"web"})", kAntiByHost)),
            "0/6 nodes are available: 6 node(s) didn't match pod anti-affinity rules.");
  // Symmetry: a pod the placed ones' anti-affinity matches may not join them either.
  EXPECT_EQ(Place(Pod("plain", R"({"app":"web"})")),
            "0/6 nodes are available: 6 node(s) didn't satisfy existing pods anti-affinity rules.");
  // Another namespace is not theirs.
  EXPECT_EQ(Place(Pod("elsewhere", R"({"app":"web"})", "{}", "other")).substr(0, 1), "n");
}

TEST_F(PodPlacementTest, RequiredAffinityFollowsTheFirstPodOfItsGroup) {
  constexpr const char* kWithCache = R"({"affinity":{"podAffinity":{
    "requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":
    {"app":"cache"}},"topologyKey":"topology.kubernetes.io/zone"}]}}})";
  // No cache pod yet and the pod is not one: nowhere.
  EXPECT_EQ(Place(Pod("web", R"({"app":"web"})", kWithCache)),
            "0/6 nodes are available: 6 node(s) didn't match pod affinity rules.");
  // The first of the group matches its own term: anywhere.
  std::string first = Place(Pod("cache-0", R"({"app":"cache"})", kWithCache));
  ASSERT_EQ(first.substr(0, 1), "n");
  std::string zone = "z" + std::to_string((first[1] - '0') / 2);
  for (int i = 0; i < 4; ++i) {
    std::string node = Place(Pod("web-" + std::to_string(i), R"({"app":"web"})", kWithCache));
    ASSERT_EQ(node.substr(0, 1), "n") << node;
    EXPECT_EQ("z" + std::to_string((node[1] - '0') / 2), zone) << node;
  }
}

constexpr const char* kSpreadByZone = R"({"topologySpreadConstraints":[{"maxSkew":1,
    "topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule",
    "labelSelector":{"matchLabels":{"app":"api"}}}]})";

TEST_F(PodPlacementTest, TopologySpreadKeepsZonesWithinMaxSkew) {
  const char* kSpread = kSpreadByZone;
  std::map<std::string, int> per_zone;
  for (int i = 0; i < 9; ++i) {
    std::string node = Place(Pod("api-" + std::to_string(i), R"({"app":"api"})", kSpread));
    ASSERT_EQ(node.substr(0, 1), "n") << node;
    per_zone["z" + std::to_string((node[1] - '0') / 2)]++;
    int lo = 100, hi = 0;
    for (const auto& z : {"z0", "z1", "z2"}) {
      lo = std::min(lo, per_zone[z]);
      hi = std::max(hi, per_zone[z]);
    }
    EXPECT_LE(hi - lo, 1) << "after " << i + 1 << " pods";
  }
  // A node without the key is no domain: the pod cannot go there.
  nodes_[5].labels.erase("topology.kubernetes.io/zone");
  NodeInfo& bare = nodes_[5];
  auto p = registry_.NewFilter("PodTopologySpread");
  ASSERT_TRUE(p.ok());
  PodInfo pod = Pod("api-x", R"({"app":"api"})", kSpread);
  const NodeSnapshot snapshot(All());
  CycleState state;
  state.snapshot = &snapshot;
  (*p)->PreFilter(pod, state);
  auto r = (*p)->Filter(pod, bare, state);
  ASSERT_FALSE(r.fits);
  EXPECT_EQ(r.reasons.front(),
            "node(s) didn't match pod topology spread constraints (missing required label)");
}

TEST_F(PodPlacementTest, ASnapshotKeptBetweenDecisionsFollowsRelabelledNodes) {
  // One snapshot for every decision, as the scheduler keeps it: the zones are
  // read from the labels once, and again after Invalidate().
  NodeSnapshot kept(All());
  const NodeSnapshot stale(All());
  (void)stale.Domains("topology.kubernetes.io/zone");  // Read now, never again.
  std::set<std::string> zones;
  for (int i = 0; i < 3; ++i) {
    std::string node =
        Place(Pod("api-" + std::to_string(i), R"({"app":"api"})", kSpreadByZone), &kept);
    ASSERT_EQ(node.substr(0, 1), "n") << node;
    zones.insert(nodes_[node[1] - '0'].labels["topology.kubernetes.io/zone"]);
  }
  EXPECT_EQ(zones.size(), 3U);
  // z2's nodes join z0, which then holds two pods against z1's one: only z1 may take the next.
  for (int i : {4, 5}) nodes_[i].labels["topology.kubernetes.io/zone"] = "z0";
  kept.Invalidate();
  std::string next = Place(Pod("api-3", R"({"app":"api"})", kSpreadByZone), &kept);
  EXPECT_TRUE(next == "n2" || next == "n3") << next;
  // Now z0 and z1 hold two pods each, so z1's n2 fits; by the labels as they
  // were (z0 1, z1 2, z2 1), it would not.
  auto filter = registry_.NewFilter("PodTopologySpread");
  ASSERT_TRUE(filter.ok());
  PodInfo pod = Pod("api-4", R"({"app":"api"})", kSpreadByZone);
  for (const NodeSnapshot* s : {static_cast<const NodeSnapshot*>(&kept), &stale}) {
    CycleState state;
    state.snapshot = s;
    (*filter)->PreFilter(pod, state);
    EXPECT_TRUE((*filter)->Filter(pod, nodes_[4], state).fits);
    EXPECT_EQ((*filter)->Filter(pod, nodes_[2], state).fits, s == &kept);
  }
}

TEST_F(PodPlacementTest, MinDomainsCountsMissingDomainsAsEmpty) {
  // Only z0 eligible (node affinity), minDomains 2: the global minimum is 0, so z0 takes maxSkew.
  constexpr const char* kSpread = R"({"affinity":{"nodeAffinity":{
    "requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":
    [{"key":"topology.kubernetes.io/zone","operator":"In","values":["z0"]}]}]}}},
    "topologySpreadConstraints":[{"maxSkew":2,"minDomains":2,
    "topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule",
    "labelSelector":{"matchLabels":{"app":"db"}}}]})";
  EXPECT_EQ(Place(Pod("db-0", R"({"app":"db"})", kSpread)).substr(0, 1), "n");
  EXPECT_EQ(Place(Pod("db-1", R"({"app":"db"})", kSpread)).substr(0, 1), "n");
  std::string third = Place(Pod("db-2", R"({"app":"db"})", kSpread));
  EXPECT_NE(third.find("didn't match pod topology spread constraints"), std::string::npos) << third;
}

TEST_F(PodPlacementTest, PreferredAntiAffinityAndSoftSpreadSpreadPods) {
  constexpr const char* kPreferApart = R"({"affinity":{"podAntiAffinity":{
    "preferredDuringSchedulingIgnoredDuringExecution":[{"weight":100,"podAffinityTerm":{
    "labelSelector":{"matchLabels":{"app":"w"}},"topologyKey":"kubernetes.io/hostname"}}]}}})";
  std::set<std::string> used;
  for (int i = 0; i < 6; ++i)
    used.insert(Place(Pod("w-" + std::to_string(i), R"({"app":"w"})", kPreferApart)));
  EXPECT_EQ(used.size(), 6u);
  // Soft: a seventh still finds a node.
  EXPECT_EQ(Place(Pod("w-6", R"({"app":"w"})", kPreferApart)).substr(0, 1), "n");
}

TEST_F(PodPlacementTest, NamespaceSelectorsReadNamespaceLabels) {
  namespaces_["team-a"] = {{"team", "a"}};
  namespaces_["team-b"] = {{"team", "b"}};
  constexpr const char* kAwayFromTeamA = R"({"affinity":{"podAntiAffinity":{
    "requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{},
    "namespaceSelector":{"matchLabels":{"team":"a"}},"topologyKey":"topology.kubernetes.io/zone"}]}}})";
  std::string a = Place(Pod("a-0", R"({"x":"1"})", "{}", "team-a"));
  ASSERT_EQ(a.substr(0, 1), "n");
  std::string loner = Place(Pod("loner", R"({})", kAwayFromTeamA, "team-b"));
  ASSERT_EQ(loner.substr(0, 1), "n") << loner;
  EXPECT_NE((loner[1] - '0') / 2, (a[1] - '0') / 2) << loner << " shares a zone with " << a;
}

}  // namespace
}  // namespace kiso::scheduler

namespace kiso::scheduler {
namespace {

TEST(Preemption, EvictsTheFewestLowestPriorityPodsThatMakeRoom) {
  Registry registry;
  RegisterBuiltins(registry);
  auto f = Framework::Create(registry, Profile{});
  ASSERT_TRUE(f.ok());
  auto make_node = [](const std::string& name) {
    NodeInfo n;
    n.name = name;
    n.labels = {{"kubernetes.io/hostname", name}};
    n.allocatable = {1000, 8LL << 30, 100LL << 30, 110};
    return n;
  };
  auto make_pod = [](const std::string& name, int64_t cpu, int64_t priority) {
    PodInfo p;
    p.ns = "default";
    p.name = name;
    p.uid = name;
    p.requests = {cpu, 0, 0, 1};
    p.priority = priority;
    return p;
  };
  NodeInfo a = make_node("a");
  NodeInfo b = make_node("b");
  // a: two pods of priority 10 (400m each); b: one of priority 5 (600m) and one of 100 (300m).
  AddPod(a, make_pod("a1", 400, 10));
  AddPod(a, make_pod("a2", 400, 10));
  AddPod(b, make_pod("b1", 600, 5));
  AddPod(b, make_pod("b2", 300, 100));
  std::vector<const NodeInfo*> nodes = {&a, &b};
  PodInfo high = make_pod("high", 500, 50);
  EXPECT_FALSE((*f)->Schedule(high, nodes).ok());
  auto p = (*f)->Preempt(high, nodes);
  ASSERT_TRUE(p.has_value());
  // On b one victim of priority 5 will do; on a one of priority 10: b's is lower.
  EXPECT_EQ(p->node, "b");
  ASSERT_EQ(p->victims.size(), 1u);
  EXPECT_EQ(p->victims[0]->name, "b1");
  // Not above anything that would make room: no preemption.
  EXPECT_FALSE((*f)->Preempt(make_pod("low", 500, 1), nodes).has_value());
  PodInfo never = high;
  never.preempts = false;
  EXPECT_FALSE((*f)->Preempt(never, nodes).has_value());
  // Too big for any node even emptied of lower pods.
  EXPECT_FALSE((*f)->Preempt(make_pod("huge", 2000, 1000), nodes).has_value());

  // A budget that allows no disruption of b1 sends the preemption to a, where none is violated.
  auto budget = [](const std::string& app, int64_t allowed) {
    return DisruptionBudget{"default", *api::LabelSelector::Parse("app=" + app), allowed};
  };
  NodeInfo c = make_node("c");
  NodeInfo d = make_node("d");
  PodInfo c1 = make_pod("c1", 600, 5);
  c1.labels = {{"app", "guarded"}};
  AddPod(c, c1);
  AddPod(c, make_pod("c2", 300, 100));
  AddPod(d, make_pod("d1", 400, 10));
  AddPod(d, make_pod("d2", 400, 10));
  std::vector<const NodeInfo*> guarded = {&c, &d};
  std::vector<DisruptionBudget> none_allowed = {budget("guarded", 0)};
  p = (*f)->Preempt(high, guarded, nullptr, &none_allowed);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->node, "d");
  EXPECT_EQ(p->violations, 0);
  // One disruption allowed: c's single low victim is fine again.
  std::vector<DisruptionBudget> one_allowed = {budget("guarded", 1)};
  p = (*f)->Preempt(high, guarded, nullptr, &one_allowed);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->node, "c");
  // A budget is a preference: with no other node, its pod is still evicted (one violation).
  std::vector<const NodeInfo*> only_c = {&c};
  p = (*f)->Preempt(high, only_c, nullptr, &none_allowed);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->victims.size(), 1u);
  EXPECT_EQ(p->violations, 1);
}

}  // namespace
}  // namespace kiso::scheduler
