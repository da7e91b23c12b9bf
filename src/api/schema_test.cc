#include "api/schema.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "api/resources.h"

namespace kiso::api {
namespace {

namespace json = boost::json;

TEST(Schema, DeclarationsParseAndEveryServedKindHasOne) {
  EXPECT_TRUE(SchemaErrors().empty()) << SchemaErrors().front();
  for (const auto& type : BuiltinResources()) EXPECT_TRUE(HasSchema(type.kind)) << type.kind;
}

TEST(Schema, TypeMismatchesInTheDecodersWords) {
  auto check = [](std::string_view kind, std::string_view text) {
    return CheckSchema(kind, json::parse(text)).type_error.value_or("");
  };
  EXPECT_EQ(check("Deployment", R"({"spec":{"replicas":"3"}})"),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of "
            "type int32");
  EXPECT_EQ(check("Deployment", R"({"spec":{"replicas":1.5}})"),
            "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas "
            "of type int32");
  EXPECT_EQ(check("Deployment", R"({"spec":{"replicas":4294967296}})"),
            "json: cannot unmarshal number 4294967296 into Go struct field "
            "DeploymentSpec.spec.replicas of type int32");
  EXPECT_EQ(check("Deployment", R"({"spec":{"strategy":{"rollingUpdate":{"maxSurge":true}}}})"),
            "json: cannot unmarshal bool into Go struct field "
            "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type "
            "intstr.IntOrString");
  EXPECT_EQ(check("Pod", R"({"metadata":{"labels":{"a":1}}})"),
            "json: cannot unmarshal number 1 into Go struct field ObjectMeta.metadata.labels of "
            "type string");
  EXPECT_EQ(check("Pod", R"({"spec":{"containers":["x"]}})"),
            "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type "
            "v1.Container");
  EXPECT_EQ(check("Pod", R"({"spec":{"containers":[{"resources":{"limits":{"cpu":"lots"}}}]}})"),
            "spec.containers[0].resources.limits[cpu]: quantities must match the regular "
            "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
  EXPECT_EQ(check("Secret", R"({"data":{"k":"not base64!"}})"),
            "data[k]: illegal base64 data at input byte 3");
  EXPECT_EQ(check("Pod", R"({"status":{"startTime":"yesterday"}})"),
            "status.startTime: parsing time \"yesterday\": not an RFC 3339 time "
            "(2006-01-02T15:04:05Z07:00)");
  // What Go accepts: null for anything, numbers for quantities, either form of IntOrString.
  EXPECT_EQ(check("Deployment", R"({"spec":{"replicas":null,"strategy":{"rollingUpdate":
      {"maxSurge":2,"maxUnavailable":"25%"}},"template":{"spec":{"containers":[
      {"resources":{"limits":{"cpu":2,"memory":"1Gi"}}}]}}},
      "metadata":{"creationTimestamp":"2026-01-02T03:04:05Z"}})"),
            "");
  EXPECT_EQ(check("Secret", R"({"data":{"k":"aGVsbG8=","l":"YWJj\nZA=="}})"), "");
  EXPECT_EQ(check("Lease", R"({"spec":{"renewTime":"2026-01-02T03:04:05.123456Z"}})"), "");
}

TEST(Schema, EnumerationsAreUnsupportedValuesWithTheirPaths) {
  auto findings = CheckSchema("Pod", json::parse(R"({"spec":{"restartPolicy":"Sometimes",
      "containers":[{"imagePullPolicy":"Maybe","ports":[{"protocol":"XX"}]}],
      "tolerations":[{"operator":"Equal"}]}})"));
  ASSERT_EQ(findings.unsupported.size(), 3u);
  EXPECT_EQ(findings.unsupported[0].field, "spec.restartPolicy");
  EXPECT_EQ(findings.unsupported[0].message,
            "Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", "
            "\"OnFailure\"");
  EXPECT_EQ(findings.unsupported[1].field, "spec.containers[0].imagePullPolicy");
  EXPECT_EQ(findings.unsupported[2].field, "spec.containers[0].ports[0].protocol");
  EXPECT_EQ(findings.unsupported[2].message,
            "Unsupported value: \"XX\": supported values: \"SCTP\", \"TCP\", \"UDP\"");
}

TEST(Schema, UnknownFieldsAreFoundWithTheirPathsAtEveryDepth) {
  auto pod = json::parse(R"({"spec":{"containers":[{"livenessProbe":{"httpGet":{"prot":1}}}],
      "affinity":{"nodeAffinity":{"x":1}}}})");
  EXPECT_EQ(UnknownFields("Pod", pod),
            (std::vector<std::string>{"spec.containers[0].livenessProbe.httpGet.prot",
                                      "spec.affinity.nodeAffinity.x"}));
  // Fields of an embedded struct are the embedding type's (VolumeSource in Volume).
  EXPECT_EQ(UnknownFields("Pod", json::parse(R"({"spec":{"volumes":[{"name":"v",
      "gcePersistentDisk":{"pdName":"d","anything":1}}]}})")),
            (std::vector<std::string>{"spec.volumes[0].gcePersistentDisk.anything"}));
  // Free-form fields and unmodelled kinds take anything.
  EXPECT_TRUE(UnknownFields("Pod", json::parse(R"({"metadata":{"managedFields":[
      {"fieldsV1":{"f:spec":{"anything":{}}}}]}})"))
                  .empty());
  EXPECT_TRUE(UnknownFields("NoSuchKind", json::parse(R"({"x":1})")).empty());
}

// ---- Bounded decoding ----

// The "billion laughs" shape of CVE-2019-11253: each level refers to the one
// before nine times, so the expanded document would be 9^depth values.
std::string AliasBomb(int depth) {
  std::string text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n";
  text += "  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (int i = 1; i < depth; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    text += "  a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 9; ++j) text += (j ? "," : "") + prev;
    text += "]\n";
  }
  return text;
}

TEST(ParseYaml, AnAliasBombIsRefusedInBoundedWork) {
  std::string bomb = AliasBomb(9);
  EXPECT_LT(bomb.size(), 800u);
  auto v = ParseYaml(bomb);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(v.status().message(),
            "invalid YAML: the document is larger than the limit of 3145728 bytes once its "
            "aliases are expanded");
  // Aliases within the limit are expanded as copies.
  auto small = ParseYaml("a: &x {k: [1, 2]}\nb: *x\nc: [*x, *x]\n");
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(*small,
            json::parse(R"({"a":{"k":[1,2]},"b":{"k":[1,2]},"c":[{"k":[1,2]},{"k":[1,2]}]})"));
}

TEST(ParseYaml, DepthAndSizeAreBounded) {
  std::string deep = std::string(200, '[') + std::string(200, ']');
  auto v = ParseYaml("a: " + deep);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message(),
            "invalid YAML: the document is nested deeper than the limit of 100 levels");
  auto big = ParseYaml("a: " + std::string(2000, 'x'), 1000);
  EXPECT_EQ(big.status().code(), Code::kResourceExhausted);
  auto key = ParseYaml("? [a, b]\n: 1\n");
  EXPECT_EQ(key.status().message(),
            "invalid YAML: a mapping key must be a string, not a collection");
}

TEST(ParseJson, DepthIsBoundedAndNamed) {
  std::string deep = std::string(150, '[') + std::string(150, ']');
  auto v = ParseJson(deep);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message(),
            "invalid JSON: the document is nested deeper than the limit of 100 levels");
  EXPECT_TRUE(ParseJson(std::string(99, '[') + std::string(99, ']')).ok());
}

TEST(SerializedSize, CountsLikeTheSerialiser) {
  for (std::string_view text :
       {R"({"a":[1,2.5,"x\"y",null,true,false,{"b":"\u0001\n\t"}],"c":{}})", R"([])", R"("s")"}) {
    json::value v = json::parse(text);
    EXPECT_EQ(SerializedSize(v), json::serialize(v).size()) << text;
  }
  json::value big = json::parse(R"({"a":[1,2,3,4,5,6,7,8,9,10]})");
  EXPECT_GT(SerializedSize(big, 5), 5u);
}

}  // namespace
}  // namespace kiso::api
