#include "api/quota.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>

#include "api/object.h"

namespace kiso::api {
namespace {

namespace json = boost::json;

json::object J(std::string_view text) { return ParseJson(text)->as_object(); }

const ResourceType& Type(std::string_view group, std::string_view plural) {
  for (const auto& t : BuiltinResources()) {
    if (t.group == group && t.plural == plural) return t;
  }
  throw std::runtime_error("no such type");
}

TEST(Quota, FormatsQuantitiesAsUpstreamPrintsThem) {
  EXPECT_EQ(FormatQuantity(500, false), "500m");
  EXPECT_EQ(FormatQuantity(1000, false), "1");
  EXPECT_EQ(FormatQuantity(2000000, false), "2k");
  EXPECT_EQ(FormatQuantity(1500000, false), "1500");
  EXPECT_EQ(FormatQuantity(0, true), "0");
  EXPECT_EQ(FormatQuantity(1024.0L * 1024 * 1024 * 1000, true), "1Gi");
  EXPECT_EQ(FormatQuantity(1536.0L * 1024 * 1024 * 1000, true), "1536Mi");
  EXPECT_TRUE(IsBinaryQuantity("1Gi"));
  EXPECT_FALSE(IsBinaryQuantity("1G"));
}

TEST(Quota, APodUsesItsCountAndItsLargerOfContainersOrInitContainers) {
  auto pod = J(R"({"metadata":{"name":"p"},"spec":{
      "containers":[{"name":"a","resources":{"requests":{"cpu":"250m","memory":"64Mi"},
                                             "limits":{"cpu":"1"}}},
                    {"name":"b","resources":{"requests":{"cpu":"250m"}}}],
      "initContainers":[{"name":"i","resources":{"requests":{"cpu":"2"}}}]}})");
  auto used = QuotaUsage(Type("", "pods"), pod);
  EXPECT_EQ(used["pods"], 1000);
  EXPECT_EQ(used["count/pods"], 1000);
  EXPECT_EQ(used["requests.cpu"], 2000);  // The init container's 2 beats 250m + 250m.
  EXPECT_EQ(used["cpu"], 2000);
  EXPECT_EQ(used["requests.memory"], 64.0L * 1024 * 1024 * 1000);
  EXPECT_EQ(used["limits.cpu"], 1000);
  // A finished pod uses nothing.
  pod["status"] = json::object{{"phase", "Succeeded"}};
  EXPECT_TRUE(QuotaUsage(Type("", "pods"), pod).empty());
}

TEST(Quota, SidecarsRunBesideEverythingStartedAfterThem) {
  // Upstream's worked example: app 100m; init 200m, then sidecar 300m, then init 500m
  // (beside the sidecar: 800m); total: max(100m + 300m, 200m, 800m) = 800m.
  auto pod = J(R"({"spec":{
      "containers":[{"name":"app","resources":{"requests":{"cpu":"100m"}}}],
      "initContainers":[{"name":"i1","resources":{"requests":{"cpu":"200m"}}},
        {"name":"side","restartPolicy":"Always","resources":{"requests":{"cpu":"300m"}}},
        {"name":"i2","resources":{"requests":{"cpu":"500m"}}}],
      "overhead":{"cpu":"10m"}}})");
  EXPECT_EQ(std::llround(PodResources(pod, "requests")["cpu"]), 810);  // With the overhead.
  // A larger sidecar: the init container after it needs 500m beside its 1.
  pod["spec"].as_object()["initContainers"].as_array()[1].as_object()["resources"] =
      json::object{{"requests", json::object{{"cpu", "1"}}}};
  EXPECT_EQ(std::llround(PodResources(pod, "requests")["cpu"]), 1510);
  EXPECT_TRUE(IsSidecar(pod["spec"].at("initContainers").at(1)));
  EXPECT_FALSE(IsSidecar(pod["spec"].at("initContainers").at(0)));
}

TEST(Quota, OverheadAddsToEveryRequestAndToTheLimitsThatAreSet) {
  auto pod = J(R"({"spec":{
      "containers":[{"name":"app","resources":{"requests":{"cpu":"100m"},
                                               "limits":{"cpu":"200m"}}}],
      "overhead":{"cpu":"10m","memory":"64Mi"}}})");
  auto requests = PodResources(pod, "requests");
  EXPECT_EQ(std::llround(requests["cpu"]), 110);
  EXPECT_EQ(std::llround(requests["memory"]), 64LL * 1024 * 1024 * 1000);
  auto limits = PodResources(pod, "limits");
  EXPECT_EQ(std::llround(limits["cpu"]), 210);
  EXPECT_FALSE(limits.contains("memory"));  // Unlimited stays unlimited.
}

TEST(Quota, ServicesClaimsAndCountsOfAnyKind) {
  auto svc = J(R"({"spec":{"type":"LoadBalancer","ports":[{"port":80},{"port":443}]}})");
  auto used = QuotaUsage(Type("", "services"), svc);
  EXPECT_EQ(used["services"], 1000);
  EXPECT_EQ(used["services.loadbalancers"], 1000);
  EXPECT_EQ(used["services.nodeports"], 2000);
  auto pvc =
      J(R"({"spec":{"storageClassName":"fast","resources":{"requests":{"storage":"1Gi"}}}})");
  ResourceType claims;  // Counted as upstream counts them, though kiso does not serve them yet.
  claims.plural = "persistentvolumeclaims";
  used = QuotaUsage(claims, pvc);
  EXPECT_EQ(used["fast.storageclass.storage.k8s.io/persistentvolumeclaims"], 1000);
  EXPECT_EQ(used["requests.storage"], 1024.0L * 1024 * 1024 * 1000);
  used = QuotaUsage(Type("apps", "deployments"), J("{}"));
  EXPECT_EQ(used, (ResourceList{{"count/deployments.apps", 1000}}));

  ResourceList hard{{"pods", 1}, {"count/deployments.apps", 1}, {"services.nodeports", 1}};
  std::vector<std::string> kinds;
  for (const auto* t : QuotaKinds(hard)) kinds.push_back(t->plural);
  EXPECT_EQ(kinds, (std::vector<std::string>{"pods", "services", "deployments"}));
}

TEST(Quota, ScopesSelectPodsOnly) {
  auto best_effort = J(R"({"spec":{"containers":[{"name":"a"}]}})");
  auto burstable = J(R"({"spec":{"priorityClassName":"high","activeDeadlineSeconds":5,
      "containers":[{"name":"a","resources":{"requests":{"cpu":"1"}}}]}})");
  const auto& pods = Type("", "pods");
  auto q = J(R"({"spec":{"scopes":["BestEffort"]}})");
  EXPECT_TRUE(QuotaMatches(q, pods, best_effort));
  EXPECT_FALSE(QuotaMatches(q, pods, burstable));
  EXPECT_FALSE(QuotaMatches(q, Type("", "configmaps"), J("{}")));
  q = J(R"({"spec":{"scopes":["NotBestEffort","Terminating"],"scopeSelector":{"matchExpressions":[
      {"scopeName":"PriorityClass","operator":"In","values":["high"]}]}}})");
  EXPECT_TRUE(QuotaMatches(q, pods, burstable));
  EXPECT_FALSE(QuotaMatches(q, pods, best_effort));
  EXPECT_TRUE(
      QuotaMatches(J(R"({"spec":{"hard":{"pods":"1"}}})"), Type("", "configmaps"), J("{}")));
}

TEST(Quota, NamesWhatAPodMustStateUnderAComputeQuota) {
  auto quota = J(R"({"spec":{"hard":{"requests.cpu":"1","limits.memory":"1Gi","pods":"3",
      "requests.nvidia.com/gpu":"1"}}})");
  auto pod = J(R"({"spec":{"containers":[
      {"name":"web","resources":{"requests":{"cpu":"1"}}},{"name":"log"}]}})");
  EXPECT_EQ(QuotaMissingResources(quota, pod),
            (std::vector<std::string>{"limits.memory for: web,log", "requests.cpu for: log"}));
}

}  // namespace
}  // namespace kiso::api
