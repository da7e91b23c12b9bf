#include "api/conversion.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::api {
namespace {

namespace json = boost::json;

const ResourceType& AutoscalerAt(std::string_view version) {
  const ResourceType* t = FindResource("autoscaling", version, "horizontalpodautoscalers");
  EXPECT_NE(t, nullptr);
  return *t;
}

json::object Parse(std::string_view text) { return ParseJson(text)->as_object(); }

TEST(Conversion, AutoscalingV1CpuTargetIsAV2ResourceMetric) {
  json::object v1 = Parse(R"({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
             "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80},
    "status": {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 91}})");
  ASSERT_FALSE(ConvertToStorage(AutoscalerAt("v1"), v1));
  EXPECT_EQ(v1, Parse(R"({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
             "minReplicas": 2, "maxReplicas": 5,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                          "target": {"type": "Utilization", "averageUtilization": 80}}}]},
    "status": {"currentReplicas": 2, "desiredReplicas": 3,
               "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                                   "current": {"averageUtilization": 91}}}]}})"));
}

TEST(Conversion, WhatV1CannotSayTravelsInAnnotationsAndComesBack) {
  const std::string v2_text = R"({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "annotations": {"team": "a"}},
    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 9,
      "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
        {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "jobs"}}},
                                          "target": {"type": "Value", "value": "30"}}},
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}],
      "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
    "status": {"currentReplicas": 1, "desiredReplicas": 1,
      "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}]}})";
  json::object obj = Parse(v2_text);
  ConvertFromStorage(AutoscalerAt("v1"), obj);
  EXPECT_EQ(GetString(obj, {"apiVersion"}), "autoscaling/v1");
  EXPECT_EQ(*Find(obj, {"spec", "targetCPUUtilizationPercentage"}), json::value(50));
  EXPECT_EQ(Find(obj, {"spec", "metrics"}), nullptr);
  EXPECT_EQ(Find(obj, {"spec", "behavior"}), nullptr);
  EXPECT_EQ(Find(obj, {"status", "conditions"}), nullptr);
  // The other metrics in autoscaling/v1's MetricSpec shape, as upstream writes them.
  auto others = ParseJson(
      GetString(obj, {"metadata", "annotations", "autoscaling.alpha.kubernetes.io/metrics"}));
  ASSERT_TRUE(others.ok());
  EXPECT_EQ(*others, ParseJson(R"([
    {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}},
    {"type": "External", "external": {"metricName": "queue", "metricSelector": {"matchLabels": {"q": "jobs"}},
                                      "targetValue": "30"}},
    {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "1Gi"}}])")
                         .value());
  EXPECT_EQ(GetString(obj, {"metadata", "annotations", "team"}), "a");
  // Back to the storage version: exactly what was stored.
  ASSERT_FALSE(ConvertToStorage(AutoscalerAt("v1"), obj));
  EXPECT_EQ(obj, Parse(v2_text));
}

TEST(Conversion, AnAnnotationThatIsNotItsJsonIsRefused) {
  json::object v1 = Parse(R"({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "annotations": {"autoscaling.alpha.kubernetes.io/metrics": "{"}},
    "spec": {"maxReplicas": 2}})");
  auto err = ConvertToStorage(AutoscalerAt("v1"), v1);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, 400);
  EXPECT_NE(err->message.find("autoscaling.alpha.kubernetes.io/metrics"), std::string::npos);
}

TEST(Conversion, TheStorageVersionAndOtherKindsAreLeftAlone) {
  json::object v2 = Parse(R"({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web"}, "spec": {"maxReplicas": 2}})");
  json::object copy = v2;
  ASSERT_FALSE(ConvertToStorage(AutoscalerAt("v2"), copy));
  ConvertFromStorage(AutoscalerAt("v2"), copy);
  EXPECT_EQ(copy, v2);
  json::object status = Parse(R"({"apiVersion": "v1", "kind": "Status", "code": 404})");
  copy = status;
  ConvertFromStorage(AutoscalerAt("v1"), copy);
  EXPECT_EQ(copy, status);
  EXPECT_EQ(&AutoscalerAt("v1").Storage(), &AutoscalerAt("v2"));
  EXPECT_EQ(AutoscalerAt("v1").Schema(), "HorizontalPodAutoscaler@autoscaling.v1");
}

}  // namespace
}  // namespace kiso::api
