#include "api/validation.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/managed_fields.h"
#include "api/object.h"
#include "api/schema.h"

namespace kiso::api {
namespace {

namespace json = boost::json;

const ResourceType& Type(std::string_view plural, std::string_view group = "") {
  return *FindResource(group, "v1", plural);
}

json::object Obj(std::string_view s) { return json::parse(s).as_object(); }

// Validate's causes as "field: message".
std::vector<std::string> Causes(const ResourceType& type, const json::object& obj) {
  std::vector<std::string> out;
  for (const auto& c : Validate(type, obj, nullptr)) out.push_back(c.field + ": " + c.message);
  return out;
}

TEST(Names, Rules) {
  EXPECT_EQ(CheckDns1123Subdomain("web-1.example"), "");
  EXPECT_NE(CheckDns1123Subdomain("Bad_Name"), "");
  EXPECT_NE(CheckDns1123Subdomain("-a"), "");
  EXPECT_NE(CheckDns1123Subdomain(std::string(254, 'a')), "");
  EXPECT_EQ(CheckDns1123Label("abc-123"), "");
  EXPECT_NE(CheckDns1123Label("a.b"), "");
  EXPECT_EQ(CheckDns1035Label("web"), "");
  EXPECT_NE(CheckDns1035Label("1web"), "");
}

TEST(Quantity, Parses) {
  long double m = 0;
  ASSERT_TRUE(ParseQuantityMilli("100m", &m));
  EXPECT_DOUBLE_EQ(static_cast<double>(m), 100);
  ASSERT_TRUE(ParseQuantityMilli("1Gi", &m));
  EXPECT_DOUBLE_EQ(static_cast<double>(m), 1073741824.0 * 1000);
  ASSERT_TRUE(ParseQuantityMilli("1e3", &m));
  EXPECT_DOUBLE_EQ(static_cast<double>(m), 1e6);
  EXPECT_FALSE(ParseQuantityMilli("1GB", &m));
  EXPECT_FALSE(ParseQuantityMilli("abc", &m));
  EXPECT_FALSE(ParseQuantityMilli("", &m));
}

TEST(Defaults, PodAndDeployment) {
  auto pod = Obj(R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"},
                                                                    {"name":"d","image":"r/x:1.2","ports":[{"containerPort":80}]}]}})");
  ApplyDefaults(Type("pods"), pod);
  json::value v(pod);
  EXPECT_EQ(GetString(v, {"spec", "restartPolicy"}), "Always");
  EXPECT_EQ(GetString(v, {"spec", "dnsPolicy"}), "ClusterFirst");
  EXPECT_EQ(v.at("spec").at("terminationGracePeriodSeconds"), 30);
  EXPECT_EQ(v.at("spec").at("containers").at(0).at("imagePullPolicy"), "Always");
  EXPECT_EQ(v.at("spec").at("containers").at(1).at("imagePullPolicy"), "IfNotPresent");
  EXPECT_EQ(v.at("spec").at("containers").at(1).at("ports").at(0).at("protocol"), "TCP");
  EXPECT_EQ(GetString(v, {"status", "phase"}), "Pending");
  auto dep = Obj(R"({"spec":{"template":{"spec":{"containers":[{"name":"c","image":"x"}]}}}})");
  ApplyDefaults(Type("deployments", "apps"), dep);
  EXPECT_EQ(dep.at("spec").at("replicas"), 1);
  EXPECT_EQ(dep.at("spec").at("strategy").at("rollingUpdate").at("maxSurge"), "25%");
}

TEST(Defaults, QosClassOfAPod) {
  auto qos = [](std::string_view containers) {
    auto pod = Obj(
        fmt::format(R"({{"metadata":{{"name":"p"}},"spec":{{"containers":[{}]}}}})", containers));
    ApplyDefaults(Type("pods"), pod);
    return std::string(GetString(pod, {"status", "qosClass"}));
  };
  EXPECT_EQ(qos(R"({"name":"c","image":"x"})"), "BestEffort");
  // Limits only: requests default to them, so Guaranteed.
  EXPECT_EQ(qos(R"({"name":"c","image":"x","resources":{"limits":{"cpu":"1","memory":"1Gi"}}})"),
            "Guaranteed");
  EXPECT_EQ(qos(R"({"name":"c","image":"x","resources":{"limits":{"cpu":"1","memory":"1Gi"},
                   "requests":{"cpu":"1000m","memory":"1Gi"}}})"),
            "Guaranteed");
  EXPECT_EQ(qos(R"({"name":"c","image":"x","resources":{"requests":{"cpu":"100m"}}})"),
            "Burstable");
  // One container without limits makes the pod Burstable.
  EXPECT_EQ(qos(R"({"name":"c","image":"x","resources":{"limits":{"cpu":"1","memory":"1Gi"}}},
                   {"name":"d","image":"x","resources":{"requests":{"memory":"1Mi"}}})"),
            "Burstable");
}

TEST(Validate, PodCausesInUpstreamWords) {
  auto pod = Obj(R"({"metadata":{"name":"Bad_Name"},"spec":{"containers":[
      {"name":"c","ports":[{"containerPort":70000,"protocol":"XX"}],
       "resources":{"limits":{"cpu":"lots"}}},{"name":"c","image":"x"}],"restartPolicy":"Sometimes"}})");
  auto causes = Validate(Type("pods"), pod, nullptr);
  std::vector<std::string> fields;
  fields.reserve(causes.size());
  for (const auto& c : causes) fields.push_back(c.field + ": " + c.message.substr(0, 30));
  // (The protocol's enumeration is the schema's to check: schema_test.cc.)
  ASSERT_EQ(causes.size(), 6u) << testing::PrintToString(fields);
  EXPECT_EQ(causes[0].field, "metadata.name");
  EXPECT_EQ(causes[1].field, "spec.containers[0].image");
  EXPECT_EQ(causes[1].message, "Required value");
  EXPECT_EQ(causes[2].field, "spec.containers[0].ports[0].containerPort");
  EXPECT_EQ(causes[2].message, "Invalid value: 70000: must be between 1 and 65535, inclusive");
  EXPECT_EQ(causes[3].field, "spec.containers[0].resources.limits[cpu]");
  EXPECT_EQ(causes[4].field, "spec.containers[1].name");
  EXPECT_EQ(causes[4].reason, "FieldValueDuplicate");
  EXPECT_EQ(causes[5].field, "spec.restartPolicy");
  auto err = Invalid(Type("pods"), "Bad_Name", causes);
  EXPECT_EQ(err.code, 422);
  EXPECT_TRUE(
      err.message.starts_with("Pod \"Bad_Name\" is invalid: [metadata.name: Invalid value"));
}

TEST(Validate, OnlyInitContainersMayBeSidecarsAndOnlySidecarsHaveProbes) {
  auto pod = Obj(R"({"metadata":{"name":"p"},"spec":{
      "containers":[{"name":"c","image":"x","restartPolicy":"Always"}],
      "initContainers":[{"name":"side","image":"x","restartPolicy":"Always",
                         "readinessProbe":{"exec":{"command":["true"]}}},
                        {"name":"once","image":"x","readinessProbe":{"exec":{"command":["true"]}}},
                        {"name":"never","image":"x","restartPolicy":"Never"}]}})");
  EXPECT_EQ(Causes(Type("pods"), pod),
            (std::vector<std::string>{
                "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init "
                "containers",
                "spec.initContainers[1].readinessProbe: Forbidden: may not be set for init "
                "containers without restartPolicy=Always",
                "spec.initContainers[2].restartPolicy: Unsupported value: \"Never\": "
                "supported values: \"Always\""}));
}

TEST(Validate, PodPlacementAndStorageInUpstreamWords) {
  auto pod = Obj(R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"x"}],
      "affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[
        {"labelSelector":{}}],"preferredDuringSchedulingIgnoredDuringExecution":[
        {"weight":101,"podAffinityTerm":{"topologyKey":"zone"}}]}},
      "topologySpreadConstraints":[{"maxSkew":0,"topologyKey":"zone",
        "whenUnsatisfiable":"ScheduleAnyway","minDomains":2}]}})");
  EXPECT_EQ(Causes(Type("pods"), pod),
            (std::vector<std::string>{
                "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                "[0].topologyKey: Required value: can not be empty",
                "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution"
                "[0].weight: Invalid value: 101: must be in the range 1-100",
                "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater "
                "than zero",
                "spec.topologySpreadConstraints[0].minDomains: Invalid value: 2: can only use "
                "minDomains if whenUnsatisfiable=DoNotSchedule"}));
  auto claim =
      Obj(R"({"metadata":{"name":"c"},"spec":{"resources":{"requests":{"storage":"0"}}}})");
  EXPECT_EQ(Causes(Type("persistentvolumeclaims"), claim),
            (std::vector<std::string>{
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Invalid value: \"0\": must be greater than zero"}));
  // Bound: the spec is fixed but for a larger request.
  auto old = Obj(R"({"metadata":{"name":"c"},"spec":{"accessModes":["ReadWriteOnce"],
      "volumeName":"v","resources":{"requests":{"storage":"2Gi"}}}})");
  auto smaller = old;
  smaller["spec"].as_object()["resources"] = Obj(R"({"requests":{"storage":"1Gi"}})");
  auto moved = old;
  moved["spec"].as_object()["volumeName"] = "w";
  auto grown = old;
  grown["spec"].as_object()["resources"] = Obj(R"({"requests":{"storage":"3Gi"}})");
  auto fields = [&](const json::object& now) {
    std::vector<std::string> out;
    for (const auto& c : Validate(Type("persistentvolumeclaims"), now, &old))
      out.push_back(c.field);
    return out;
  };
  EXPECT_EQ(fields(smaller), std::vector<std::string>{"spec.resources.requests.storage"});
  EXPECT_EQ(fields(moved), std::vector<std::string>{"spec"});
  EXPECT_TRUE(fields(grown).empty());
  auto volume = Obj(R"({"metadata":{"name":"v"},"spec":{"capacity":{"storage":"1Gi"},
      "accessModes":["ReadWriteOnce"],"local":{"path":"/x"}}})");
  EXPECT_EQ(Causes(Type("persistentvolumes"), volume),
            std::vector<std::string>{
                "spec.nodeAffinity: Required value: Local volume requires node affinity"});
}

TEST(Validate, DeploymentSelectorMustMatchTemplate) {
  auto dep = Obj(R"({"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"app":"a"}},
      "template":{"metadata":{"labels":{"app":"b"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}})");
  auto causes = Validate(Type("deployments", "apps"), dep, nullptr);
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0].field, "spec.template.metadata.labels");
  EXPECT_EQ(Invalid(Type("deployments", "apps"), "d", causes).message,
            "Deployment.apps \"d\" is invalid: spec.template.metadata.labels: Invalid value: "
            "{\"app\":\"b\"}: `selector` does not match template `labels`");
}

TEST(Validate, CronJobScheduleAndTimeZone) {
  auto cron = [](std::string_view schedule, std::string_view zone) {
    auto cj = Obj(fmt::format(
        R"({{"metadata":{{"name":"c"}},"spec":{{"schedule":"{}",{}"jobTemplate":{{"spec":{{
        "template":{{"spec":{{"restartPolicy":"Never","containers":[{{"name":"c","image":"x"}}]}}}}}}}}}}}})",
        schedule, zone.empty() ? "" : fmt::format(R"("timeZone":"{}",)", zone)));
    ApplyDefaults(Type("cronjobs", "batch"), cj);
    std::string out;
    for (const auto& c : Validate(Type("cronjobs", "batch"), cj, nullptr))
      out += c.field + ": " + c.message + "\n";
    return out;
  };
  EXPECT_EQ(cron("*/5 * * * *", ""), "");
  EXPECT_EQ(cron("@hourly", "Europe/Berlin"), "");
  EXPECT_EQ(cron("61 * * * *", ""),
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): "
            "61\n");
  EXPECT_NE(cron("TZ=UTC 0 * * * *", "").find("cannot use TZ or CRON_TZ"), std::string::npos);
  EXPECT_EQ(cron("0 * * * *", "Nowhere/Atlantis"),
            "spec.timeZone: Invalid value: \"Nowhere/Atlantis\": unknown time zone "
            "Nowhere/Atlantis\n");
  EXPECT_NE(cron("0 * * * *", "Local").find("explicit time zone"), std::string::npos);
  // Defaults as upstream's.
  auto cj =
      Obj(R"({"metadata":{"name":"c"},"spec":{"schedule":"@daily","jobTemplate":{"spec":{}}}})");
  ApplyDefaults(Type("cronjobs", "batch"), cj);
  EXPECT_EQ(GetString(cj, {"spec", "concurrencyPolicy"}), "Allow");
  EXPECT_EQ(Find(cj, {"spec", "successfulJobsHistoryLimit"})->as_int64(), 3);
  EXPECT_EQ(Find(cj, {"spec", "failedJobsHistoryLimit"})->as_int64(), 1);
  EXPECT_EQ(Find(cj, {"spec", "suspend"})->as_bool(), false);
}

TEST(Validate, MatchLabelsThatAreNotAMapAreInvalidNotACrash) {
  // Found by fuzz_decode (fuzz/corpus/decode/regression-matchlabels-string.yaml).
  auto dep = Obj(R"({"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":"{app: a}"},
      "template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}})");
  auto causes = Validate(Type("deployments", "apps"), dep, nullptr);
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0].field, "spec.selector.matchLabels");
}

// NOLINTBEGIN(bugprone-suspicious-missing-comma): long messages are split over lines.
TEST(Validate, WebhookConfigurationsAndTheirDefaultsForLimitRanges) {
  auto config = Obj(R"({"metadata":{"name":"w"},"webhooks":[
      {"name":"a.example.com","clientConfig":{"url":"http://x"},"sideEffects":"Some",
       "admissionReviewVersions":["v2"],"timeoutSeconds":31,
       "matchConditions":[{"name":"c","expression":"true"}]},
      {"name":"a.example.com","clientConfig":{}}]})");
  std::vector<std::string> got;
  for (const auto& c :
       Validate(Type("validatingwebhookconfigurations", "admissionregistration.k8s.io"), config,
                nullptr))
    got.push_back(c.field + ": " + c.message);
  EXPECT_EQ(got, (std::vector<std::string>{
                     "webhooks[0].clientConfig.url: Invalid value: \"http://x\": 'https' is the "
                     "only allowed URL scheme",
                     "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: "
                     "\"None\", \"NoneOnDryRun\"",
                     "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, "
                     "v1beta1",
                     "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be "
                     "between 1 and 30 seconds",
                     "webhooks[0].matchConditions: Forbidden: CEL match conditions are not "
                     "supported by kiso yet",
                     "webhooks[1].name: Duplicate value: \"a.example.com\"",
                     "webhooks[1].clientConfig: Required value: exactly one of url or service is "
                     "required",
                     "webhooks[1].sideEffects: Required value: must specify one of None, "
                     "NoneOnDryRun",
                     "webhooks[1].admissionReviewVersions: Required value: must specify one of v1, "
                     "v1beta1"}));
  // A LimitRange's Container item: default from max, defaultRequest from default, then min.
  auto lr = Obj(R"({"spec":{"limits":[{"type":"Container","max":{"cpu":"2"},
      "default":{"memory":"1Gi"},"min":{"ephemeral-storage":"1Gi"}}]}})");
  ApplyDefaults(Type("limitranges"), lr);
  EXPECT_EQ(json::serialize(lr.at("spec").at("limits").at(0)),
            R"({"type":"Container","max":{"cpu":"2"},"default":{"memory":"1Gi","cpu":"2"},)"
            R"("min":{"ephemeral-storage":"1Gi"},"defaultRequest":{"memory":"1Gi","cpu":"2",)"
            R"("ephemeral-storage":"1Gi"}})");
  // A pod's limit without a request is its request; a template's is left as written.
  auto pod = Obj(R"({"spec":{"containers":[{"name":"a","image":"x",
      "resources":{"limits":{"cpu":"1"}}}]}})");
  ApplyDefaults(Type("pods"), pod);
  EXPECT_EQ(json::serialize(pod.at("spec").at("containers").at(0).at("resources")),
            R"({"limits":{"cpu":"1"},"requests":{"cpu":"1"}})");
  // A Secret's stringData is merged into data, base64-encoded, its values winning.
  auto secret = Obj(R"({"data":{"a":"eA==","b":"eQ=="},"stringData":{"b":"hi","c":""}})");
  ApplyDefaults(Type("secrets"), secret);
  EXPECT_EQ(json::serialize(secret), R"({"data":{"a":"eA==","b":"aGk=","c":""},"type":"Opaque"})");
}
// NOLINTEND(bugprone-suspicious-missing-comma)

TEST(Schema, UnknownFieldsAreFoundWithTheirPaths) {
  auto pod = json::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","bogus":1},
      "spec":{"containers":[{"name":"c","image":"x","imagePullPolicyy":"Always"}],"foo":{}},"extra":1})");
  EXPECT_EQ(UnknownFields("Pod", pod),
            (std::vector<std::string>{"metadata.bogus", "spec.containers[0].imagePullPolicyy",
                                      "spec.foo", "extra"}));
  auto cm = json::parse(
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"any":"x"}})");
  EXPECT_TRUE(UnknownFields("ConfigMap", cm).empty());
}

TEST(ParseJson, StrictFindsDuplicateFields) {
  EXPECT_TRUE(ParseJson(R"({"a":1,"b":{"a":2}})", true).ok());
  auto dup = ParseJson(R"({"spec":{"replicas":1,"replicas":2}})", true);
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(dup.status().message(), "duplicate field \"spec.replicas\"");
  auto in_list = ParseJson(R"({"l":[{"x":1},{"y":1,"y":2}]})", true);
  EXPECT_EQ(in_list.status().message(), "duplicate field \"l.y\"");
  EXPECT_TRUE(ParseJson(R"({"spec":{"replicas":1,"replicas":2}})", false).ok());
  EXPECT_FALSE(ParseJson("{", false).ok());
}

TEST(ParseYaml, ConvertsScalarsLikeKubernetes) {
  auto v = ParseYaml("a: 1\nb: true\nc: \"1\"\nd: x\ne: null\nf: 1.5\nl: [1, two]\n");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, json::parse(R"({"a":1,"b":true,"c":"1","d":"x","e":null,"f":1.5,"l":[1,"two"]})"));
  EXPECT_FALSE(ParseYaml("a: [").ok());
}

TEST(ManagedFields, UpdateOwnershipAndApplyConflicts) {
  const auto& type = Type("deployments", "apps");
  auto obj = Obj(R"({"metadata":{"name":"d","labels":{"a":"1"}},"spec":{"replicas":1,
      "template":{"spec":{"containers":[{"name":"c","image":"x"}]}}}})");
  RecordUpdate(type, "kubectl-create", nullptr, obj);
  json::value v(obj);
  EXPECT_EQ(GetString(v.at("metadata").at("managedFields").at(0), {"manager"}), "kubectl-create");
  EXPECT_TRUE(FromFieldsV1(v.at("metadata").at("managedFields").at(0).at("fieldsV1"))
                  .contains("f:spec/f:replicas"));
  // Applying a different replicas conflicts with kubectl-create's ownership…
  auto applied = Obj(R"({"spec":{"replicas":3}})");
  auto live = obj;
  auto err = Apply(type, "ci", false, applied, live);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->code, 409);
  EXPECT_EQ(err->message,
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: "
            ".spec.replicas");
  ASSERT_EQ(err->causes.size(), 1u);
  EXPECT_EQ(err->causes[0].field, ".spec.replicas");
  // …unless forced; then ci owns it and kubectl-create does not.
  ASSERT_FALSE(Apply(type, "ci", true, applied, live).has_value());
  EXPECT_EQ(live.at("spec").at("replicas"), 3);
  for (const auto& e : live.at("metadata").at("managedFields").as_array()) {
    auto fields = FromFieldsV1(e.at("fieldsV1"));
    EXPECT_EQ(fields.contains("f:spec/f:replicas"), e.at("manager") == "ci");
  }
  // A field the applier stops applying is removed when nobody else owns it.
  auto with_label = Obj(R"({"spec":{"replicas":3},"metadata":{"annotations":{"x":"1"}}})");
  ASSERT_FALSE(Apply(type, "ci", false, with_label, live).has_value());
  ASSERT_FALSE(Apply(type, "ci", false, applied, live).has_value());
  EXPECT_FALSE(json::value(live).at("metadata").as_object().contains("annotations") &&
               json::value(live).at("metadata").at("annotations").as_object().contains("x"));
  // An Update that changes one container's image takes only that field.
  auto before = live;
  auto after = live;
  after["spec"]
      .as_object()["template"]
      .as_object()["spec"]
      .as_object()["containers"]
      .as_array()[0]
      .as_object()["image"] = "y";
  RecordUpdate(type, "kubectl-set", &before, after);
  bool found = false;
  for (const auto& e : after.at("metadata").at("managedFields").as_array()) {
    auto fields = FromFieldsV1(e.at("fieldsV1"));
    bool owns = fields.contains("f:spec/f:template/f:spec/f:containers/k:{\"name\":\"c\"}/f:image");
    EXPECT_EQ(owns, e.at("manager") == "kubectl-set") << json::serialize(e);
    found |= e.at("manager") == "kubectl-set";
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(PathString("f:spec/f:containers/k:{\"name\":\"c\"}/f:image"),
            ".spec.containers[name=\"c\"].image");
}

TEST(Validate, IntOrStringFieldsInUpstreamWords) {
  auto causes_of = [](std::string_view plural, std::string_view group, std::string_view text) {
    json::object obj = Obj(text);
    ApplyDefaults(Type(plural, group), obj);
    std::vector<std::string> out;
    for (const auto& c : Validate(Type(plural, group), obj, nullptr))
      out.push_back(c.field + ": " + c.message);
    return out;
  };
  constexpr std::string_view kTemplate =
      R"("selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},)"
      R"("spec":{"containers":[{"name":"c","image":"x"}]}})";
  auto deployment = [&](std::string_view strategy) {
    return fmt::format(R"({{"metadata":{{"name":"d"}},"spec":{{{},"strategy":{}}}}})", kTemplate,
                       strategy);
  };
  // The issue's example: once, a stored maxSurge "abc" ended the server.
  EXPECT_EQ(causes_of("deployments", "apps", deployment(R"({"rollingUpdate":{"maxSurge":"abc"}})")),
            (std::vector<std::string>{
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"abc\": a valid percent "
                "string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
                "regex used for validation is '[0-9]+%')"}));
  EXPECT_EQ(causes_of("deployments", "apps",
                      deployment(R"({"rollingUpdate":{"maxSurge":0,"maxUnavailable":"0%"}})")),
            (std::vector<std::string>{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "
                                      "\"0%\": may not be 0 when `maxSurge` is 0"}));
  EXPECT_EQ(causes_of("deployments", "apps",
                      deployment(R"({"rollingUpdate":{"maxUnavailable":"120%","maxSurge":-1}})")),
            (std::vector<std::string>{
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"120%\": must not "
                "be greater than 100%",
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or "
                "equal to 0"}));
  EXPECT_EQ(causes_of("deployments", "apps",
                      deployment(R"({"type":"Recreate","rollingUpdate":{"maxSurge":1}})")),
            (std::vector<std::string>{"spec.strategy.rollingUpdate: Forbidden: may not be "
                                      "specified when strategy `type` is 'Recreate'"}));
  EXPECT_TRUE(causes_of("deployments", "apps",
                        deployment(R"({"rollingUpdate":{"maxSurge":"30%","maxUnavailable":2}})"))
                  .empty());
  EXPECT_EQ(causes_of("services", "", R"({"metadata":{"name":"s"},"spec":{"ports":[
      {"port":80,"targetPort":"Web_Port"},{"name":"b","port":81,"targetPort":0}]}})"),
            (std::vector<std::string>{
                "spec.ports[0].name: Required value",
                "spec.ports[0].targetPort: Invalid value: \"Web_Port\": must contain only "
                "alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, "
                "inclusive"}));
  EXPECT_EQ(causes_of("pods", "", R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c",
      "image":"x","livenessProbe":{"httpGet":{"port":"http"},"periodSeconds":-1}}]}})"),
            (std::vector<std::string>{"spec.containers[0].livenessProbe.periodSeconds: Invalid "
                                      "value: -1: must be greater than or equal to 0"}));
}

}  // namespace
}  // namespace kiso::api
