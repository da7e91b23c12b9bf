#include "scheduler/volume_binding.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::scheduler {
namespace {

namespace json = boost::json;

json::value Claim(const std::string& storage, json::array modes, const std::string& cls = "") {
  return json::object{
      {"metadata", json::object{{"name", "data"}, {"namespace", "default"}, {"uid", "u1"}}},
      {"spec", json::object{
                   {"accessModes", std::move(modes)},
                   {"storageClassName", cls},
                   {"resources", json::object{{"requests", json::object{{"storage", storage}}}}}}}};
}

json::value Volume(const std::string& name, const std::string& storage, json::array modes,
                   const std::string& cls = "", const std::string& node = "") {
  json::object spec{{"capacity", json::object{{"storage", storage}}},
                    {"accessModes", std::move(modes)},
                    {"storageClassName", cls},
                    {"hostPath", json::object{{"path", "/x"}}}};
  if (!node.empty()) {
    spec["nodeAffinity"] = json::parse(R"({"required":{"nodeSelectorTerms":[{"matchExpressions":
        [{"key":"kubernetes.io/hostname","operator":"In","values":[")" +
                                       node + R"("]}]}]}})");
  }
  return json::object{{"metadata", json::object{{"name", name}, {"labels", {{"tier", "gold"}}}}},
                      {"spec", std::move(spec)},
                      {"status", json::object{{"phase", "Available"}}}};
}

NodeInfo Node(const std::string& name) {
  NodeInfo n;
  n.name = name;
  n.labels = {{"kubernetes.io/hostname", name}};
  return n;
}

TEST(VolumeBinding, TheSmallestVolumeThatSatisfiesTheClaimIsChosen) {
  std::vector<json::value> volumes = {Volume("big", "10Gi", {"ReadWriteOnce"}),
                                      Volume("small", "1Gi", {"ReadWriteOnce"}),
                                      Volume("tiny", "500Mi", {"ReadWriteOnce"})};
  const auto* best = BestVolumeFor(Claim("1G", {"ReadWriteOnce"}), volumes, nullptr);
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(api::GetString(*best, {"metadata", "name"}), "small");  // 1Gi ≥ 1G; 500Mi is not.
}

TEST(VolumeBinding, ClassModesSelectorAndOtherClaimsRuleVolumesOut) {
  EXPECT_FALSE(VolumeSatisfies(Volume("v", "1Gi", {"ReadWriteOnce"}, "fast"),
                               Claim("1Gi", {"ReadWriteOnce"}), nullptr));
  EXPECT_FALSE(VolumeSatisfies(Volume("v", "1Gi", {"ReadWriteOnce"}),
                               Claim("1Gi", {"ReadWriteMany"}), nullptr));
  json::value selective = Claim("1Gi", {"ReadWriteOnce"});
  selective.as_object()["spec"].as_object()["selector"] =
      json::object{{"matchLabels", {{"tier", "silver"}}}};
  EXPECT_FALSE(VolumeSatisfies(Volume("v", "1Gi", {"ReadWriteOnce"}), selective, nullptr));
  json::value taken = Volume("v", "1Gi", {"ReadWriteOnce"});
  taken.as_object()["spec"].as_object()["claimRef"] =
      json::object{{"namespace", "default"}, {"name", "other"}, {"uid", "u2"}};
  EXPECT_FALSE(VolumeSatisfies(taken, Claim("1Gi", {"ReadWriteOnce"}), nullptr));
  // Kept for this claim by name (no uid yet): it is the one, even when bigger ones are smaller.
  json::value kept = Volume("kept", "5Gi", {"ReadWriteOnce"});
  kept.as_object()["spec"].as_object()["claimRef"] =
      json::object{{"namespace", "default"}, {"name", "data"}};
  std::vector<json::value> volumes = {Volume("small", "1Gi", {"ReadWriteOnce"}), kept};
  const auto* best = BestVolumeFor(Claim("1Gi", {"ReadWriteOnce"}), volumes, nullptr);
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(api::GetString(*best, {"metadata", "name"}), "kept");
}

TEST(VolumeBinding, NodeAffinityLimitsWhereAVolumeMayBeUsed) {
  json::value local = Volume("local", "1Gi", {"ReadWriteOnce"}, "", "n1");
  NodeInfo n1 = Node("n1");
  NodeInfo n2 = Node("n2");
  EXPECT_TRUE(VolumeSatisfies(local, Claim("1Gi", {"ReadWriteOnce"}), &n1));
  EXPECT_FALSE(VolumeSatisfies(local, Claim("1Gi", {"ReadWriteOnce"}), &n2));
  EXPECT_TRUE(VolumeSatisfies(local, Claim("1Gi", {"ReadWriteOnce"}), nullptr));
}

TEST(VolumeBinding, TheFilterPlacesPodsWhereTheirClaimsCanBe) {
  Registry registry;
  RegisterBuiltins(registry);
  auto filter = registry.NewFilter("VolumeBinding");
  ASSERT_TRUE(filter.ok());
  PodInfo pod;
  ClaimPlacement bound;
  bound.bound = true;
  bound.bound_affinity = VolumeNodeAffinity(Volume("local", "1Gi", {"ReadWriteOnce"}, "", "n1"));
  pod.claims = {bound};
  EXPECT_TRUE((*filter)->Filter(pod, Node("n1"), CycleState()).fits);
  auto r = (*filter)->Filter(pod, Node("n2"), CycleState());
  ASSERT_FALSE(r.fits);
  EXPECT_EQ(r.reasons.front(), "node(s) had volume node affinity conflict");
  ClaimPlacement waiting;  // WaitForFirstConsumer, no provisioner, one volume on n2.
  waiting.candidates = {VolumeNodeAffinity(Volume("v", "1Gi", {"ReadWriteOnce"}, "", "n2"))};
  pod.claims = {waiting};
  EXPECT_TRUE((*filter)->Filter(pod, Node("n2"), CycleState()).fits);
  r = (*filter)->Filter(pod, Node("n1"), CycleState());
  ASSERT_FALSE(r.fits);
  EXPECT_EQ(r.reasons.front(), "node(s) didn't find available persistent volumes to bind");
  waiting.provisionable = true;
  pod.claims = {waiting};
  EXPECT_TRUE((*filter)->Filter(pod, Node("n1"), CycleState()).fits);
}

}  // namespace
}  // namespace kiso::scheduler
