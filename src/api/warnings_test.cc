#include "api/warnings.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::api {
namespace {

const ResourceType& Type(std::string_view group, std::string_view plural) {
  return *FindResource(group, "v1", plural);
}

boost::json::object Parse(std::string_view text) { return ParseJson(text)->as_object(); }

TEST(Warnings, APodsDeprecatedLabelsAnnotationsAndVolumesInUpstreamsWords) {
  auto pod = Parse(R"({"metadata": {"name": "p", "annotations": {
      "scheduler.alpha.kubernetes.io/critical-pod": "",
      "container.seccomp.security.alpha.kubernetes.io/c": "runtime/default"}},
    "spec": {"nodeSelector": {"beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
      "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
          {"matchExpressions": [{"key": "a", "operator": "Exists"},
                                {"key": "failure-domain.beta.kubernetes.io/zone", "operator": "Exists"}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {
          "matchExpressions": [{"key": "beta.kubernetes.io/arch", "operator": "Exists"}]}}]}},
      "volumes": [{"name": "v", "emptyDir": {}}, {"name": "g", "gitRepo": {"repository": "x"}}],
      "containers": [{"name": "c", "image": "busybox"}]}})");
  std::vector<std::string> expected;
  expected.emplace_back(
      "metadata.annotations[scheduler.alpha.kubernetes.io/critical-pod]: non-functional in v1.16+; "
      "use the \"priorityClassName\" field instead");
  expected.emplace_back(
      "metadata.annotations[container.seccomp.security.alpha.kubernetes.io/c]: non-functional in "
      "v1.27+; use the \"seccompProfile\" field instead");
  expected.emplace_back(
      "spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use \"kubernetes.io/os\" "
      "instead");
  expected.emplace_back(
      "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
      "[0].matchExpressions[1].key: failure-domain.beta.kubernetes.io/zone is deprecated since "
      "v1.17; use \"topology.kubernetes.io/zone\" instead");
  expected.emplace_back(
      "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference."
      "matchExpressions[0].key: beta.kubernetes.io/arch is deprecated since v1.14; use "
      "\"kubernetes.io/arch\" instead");
  expected.emplace_back("spec.volumes[1].gitRepo: deprecated in v1.11");
  EXPECT_EQ(WarningsFor(Type("", "pods"), pod, nullptr), expected);
}

TEST(Warnings, TemplatesAreWarnedAtTheirPathAndAnUpdateOnlyForWhatIsNew) {
  auto old = Parse(
      R"({"spec": {"template": {"spec": {"nodeSelector": {"beta.kubernetes.io/os": "linux"}}}}})");
  auto now =
      Parse(R"({"spec": {"template": {"spec": {"nodeSelector": {"beta.kubernetes.io/os": "linux",
                                                                      "beta.kubernetes.io/arch": "amd64"}}}}})");
  const ResourceType& deployments = Type("apps", "deployments");
  EXPECT_EQ(WarningsFor(deployments, now, nullptr).size(), 2u);
  EXPECT_EQ(WarningsFor(deployments, now, &old),
            std::vector<std::string>{"spec.template.spec.nodeSelector[beta.kubernetes.io/arch]: "
                                     "deprecated since v1.14; use \"kubernetes.io/arch\" instead"});
  auto cron = Parse(R"({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"volumes": [
      {"name": "r", "rbd": {}}]}}}}}})");
  EXPECT_EQ(WarningsFor(Type("batch", "cronjobs"), cron, nullptr),
            std::vector<std::string>{"spec.jobTemplate.spec.template.spec.volumes[0].rbd: "
                                     "deprecated in v1.28, non-functional in v1.31+"});
}

TEST(Warnings, IngressClassAnnotationAndNothingForCleanObjects) {
  auto ingress =
      Parse(R"({"metadata": {"annotations": {"kubernetes.io/ingress.class": "nginx"}}})");
  EXPECT_EQ(WarningsFor(Type("networking.k8s.io", "ingresses"), ingress, nullptr),
            std::vector<std::string>{"annotation \"kubernetes.io/ingress.class\" is deprecated, "
                                     "please use 'spec.ingressClassName' instead"});
  auto pod = Parse(R"({"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}})");
  EXPECT_TRUE(WarningsFor(Type("", "pods"), pod, nullptr).empty());
  EXPECT_TRUE(WarningsFor(Type("", "configmaps"), pod, nullptr).empty());
}

}  // namespace
}  // namespace kiso::api
