#include "agent/ingress_controller.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/base64.h"

namespace kiso::agent {
namespace {

namespace json = boost::json;

json::value Parse(std::string_view s) { return json::parse(s); }

json::value Class(std::string_view name, std::string_view controller, bool is_default) {
  json::object meta{{"name", name}};
  if (is_default)
    meta["annotations"] = json::object{{"ingressclass.kubernetes.io/is-default-class", "true"}};
  return json::object{{"metadata", meta}, {"spec", json::object{{"controller", controller}}}};
}

struct World {
  std::vector<json::value> ingresses, classes;
  std::map<std::string, json::value> services, secrets;
  std::map<std::string, std::vector<json::value>> slices;
  std::set<std::string> named;

  std::shared_ptr<network::ingress::RouteTable> Build() {
    named.clear();
    auto get = [](std::map<std::string, json::value>& m) {
      return [&m](const std::string& ns, const std::string& name) -> std::optional<json::value> {
        auto it = m.find(ns + "/" + name);
        return it == m.end() ? std::nullopt : std::optional<json::value>(it->second);
      };
    };
    return IngressController::Build(
        ingresses, classes, get(services), [&](const std::string& key) { return slices[key]; },
        get(secrets), &named);
  }
};

std::string Targets(const network::ingress::Backend* b) {
  if (!b) return "none";
  std::string out;
  for (const auto& t : b->targets) out += (out.empty() ? "" : ",") + t;
  return out;
}

TEST(IngressControllerBuild, ResolvesServicePortsToReadyEndpointsOfKisosClassOnly) {
  World w;
  w.classes = {Class("kiso", "kiso.dev/ingress-controller", true),
               Class("nginx", "k8s.io/ingress-nginx", false)};
  w.services["web/front"] = Parse(R"({"spec":{"ports":[
      {"name":"http","port":80,"targetPort":8080},{"name":"admin","port":9000}]}})");
  w.slices["web/front"] = {Parse(R"({"addressType":"IPv4",
      "ports":[{"name":"http","port":8080,"protocol":"TCP"},{"name":"admin","port":9090}],
      "endpoints":[{"addresses":["10.42.0.5"],"conditions":{"ready":true}},
                   {"addresses":["10.42.0.6"],"conditions":{"ready":false}},
                   {"addresses":["10.42.0.4"]}]})")};
  w.ingresses = {
      Parse(
          R"({"metadata":{"name":"a","namespace":"web","creationTimestamp":"2026-01-01T00:00:00Z"},
        "spec":{"rules":[{"host":"front.test","http":{"paths":[
          {"path":"/","pathType":"Prefix","backend":{"service":{"name":"front","port":{"number":80}}}},
          {"path":"/admin","pathType":"Exact","backend":{"service":{"name":"front","port":{"name":"admin"}}}},
          {"path":"/gone","pathType":"Prefix","backend":{"service":{"name":"missing","port":{"number":80}}}}
        ]}}]}})"),
      Parse(R"({"metadata":{"name":"other","namespace":"web"},
        "spec":{"ingressClassName":"nginx","rules":[{"host":"nginx.test","http":{"paths":[
          {"path":"/","pathType":"Prefix","backend":{"service":{"name":"front","port":{"number":80}}}}]}}]}})")};
  auto t = w.Build();
  EXPECT_EQ(Targets(t->Match("front.test", "/x")), "10.42.0.4:8080,10.42.0.5:8080");
  EXPECT_EQ(Targets(t->Match("front.test", "/admin")), "10.42.0.4:9090,10.42.0.5:9090");
  EXPECT_EQ(Targets(t->Match("front.test", "/gone")), "");  // A Service not there: 503.
  EXPECT_EQ(t->Match("nginx.test", "/"), nullptr);          // Another controller's Ingress.
  EXPECT_EQ(w.named, (std::set<std::string>{"web/front", "web/missing"}));

  // Without kiso's class as default, the classless Ingress is no longer kiso's.
  w.classes[0] = Class("kiso", "kiso.dev/ingress-controller", false);
  EXPECT_EQ(w.Build()->Match("front.test", "/"), nullptr);
}

TEST(IngressControllerBuild, TlsSecretsGiveCertificatesForTheirHosts) {
  World w;
  w.classes = {Class("kiso", "kiso.dev/ingress-controller", true)};
  w.secrets["ns/cert"] = json::object{
      {"data", json::object{{"tls.crt", Base64Encode("CERT")}, {"tls.key", Base64Encode("KEY")}}}};
  w.ingresses = {Parse(R"({"metadata":{"name":"i","namespace":"ns"},"spec":{
      "tls":[{"hosts":["a.test"],"secretName":"cert"},{"secretName":"cert"},
             {"hosts":["b.test"],"secretName":"absent"}],
      "rules":[{"host":"r.test"}]}})")};
  auto t = w.Build();
  ASSERT_EQ(t->certificates().size(), 2u);
  EXPECT_EQ(t->CertificateFor("a.test")->cert_pem, "CERT");
  EXPECT_EQ(t->CertificateFor("r.test")->key_pem, "KEY");  // No hosts: the rules' hosts.
  EXPECT_EQ(t->CertificateFor("b.test"), nullptr);
}

}  // namespace
}  // namespace kiso::agent
