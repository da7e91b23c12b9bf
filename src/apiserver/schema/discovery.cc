// Discovery, in both forms kubectl 1.32 understands: the aggregated
// apidiscovery.k8s.io/v2 (or v2beta1) document when the Accept header asks for
// it, else the legacy APIVersions / APIGroupList / APIResourceList.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/aggregator.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

json::array Strings(const std::vector<std::string>& v) {
  json::array out;
  for (const auto& s : v) out.emplace_back(s);
  return out;
}

json::object GroupVersionEntry(const std::string& group, const std::string& version) {
  return json::object{{"groupVersion", group.empty() ? version : group + "/" + version},
                      {"version", version}};
}

std::string LegacyResourceList(const std::string& group, const std::string& version) {
  json::array resources;
  for (const auto* type : api::AllResources()) {
    const api::ResourceType& t = *type;
    if (t.group != group || t.version != version) continue;
    json::object r;
    r["name"] = t.plural;
    r["singularName"] = t.singular;
    r["namespaced"] = t.namespaced;
    r["kind"] = t.kind;
    r["verbs"] = Strings(t.verbs);
    if (!t.short_names.empty()) r["shortNames"] = Strings(t.short_names);
    if (!t.categories.empty()) r["categories"] = Strings(t.categories);
    resources.push_back(std::move(r));
    for (const auto& s : t.subresources) {
      json::object sub;
      sub["name"] = t.plural + "/" + s.name;
      sub["singularName"] = "";
      sub["namespaced"] = t.namespaced;
      if (!s.group.empty()) sub["group"] = s.group;
      if (!s.version.empty()) sub["version"] = s.version;
      sub["kind"] = s.kind;
      sub["verbs"] = Strings(s.verbs);
      resources.push_back(std::move(sub));
    }
  }
  json::object list;
  list["kind"] = "APIResourceList";
  list["apiVersion"] = "v1";
  list["groupVersion"] = group.empty() ? version : group + "/" + version;
  list["resources"] = std::move(resources);
  return json::serialize(list);
}

// The named groups in discovery order.
std::vector<std::string> Groups() {
  std::vector<std::string> groups;
  for (const auto& gv : api::ServedGroupVersions()) {
    if (!gv.group.empty() && std::find(groups.begin(), groups.end(), gv.group) == groups.end())
      groups.push_back(gv.group);
  }
  return groups;
}

// A group with its versions, the preferred first.
json::object ApiGroup(const std::string& group) {
  json::array versions;
  for (const auto& gv : api::ServedGroupVersions()) {
    if (gv.group == group) versions.push_back(GroupVersionEntry(gv.group, gv.version));
  }
  json::object out;
  out["name"] = group;
  out["preferredVersion"] = versions.empty() ? json::value(nullptr) : versions.front();
  out["versions"] = std::move(versions);
  return out;
}

json::object AggregatedGroup(const std::string& group) {
  json::object item;
  item["metadata"] = json::object{{"name", group}, {"creationTimestamp", nullptr}};
  json::array versions;
  for (const auto& gv : api::ServedGroupVersions()) {
    if (gv.group != group) continue;
    json::array resources;
    for (const auto* type : api::AllResources()) {
      const api::ResourceType& t = *type;
      if (t.group != group || t.version != gv.version) continue;
      json::object r;
      r["resource"] = t.plural;
      r["responseKind"] =
          json::object{{"group", t.group}, {"version", t.version}, {"kind", t.kind}};
      r["scope"] = t.namespaced ? "Namespaced" : "Cluster";
      r["singularResource"] = t.singular;
      r["verbs"] = Strings(t.verbs);
      if (!t.short_names.empty()) r["shortNames"] = Strings(t.short_names);
      if (!t.categories.empty()) r["categories"] = Strings(t.categories);
      if (!t.subresources.empty()) {
        json::array subs;
        for (const auto& s : t.subresources) {
          json::object sub;
          sub["subresource"] = s.name;
          sub["responseKind"] = json::object{{"group", s.group.empty() ? t.group : s.group},
                                             {"version", s.version.empty() ? t.version : s.version},
                                             {"kind", s.kind}};
          sub["verbs"] = Strings(s.verbs);
          subs.push_back(std::move(sub));
        }
        r["subresources"] = std::move(subs);
      }
      resources.push_back(std::move(r));
    }
    versions.push_back(json::object{
        {"version", gv.version}, {"resources", std::move(resources)}, {"freshness", "Current"}});
  }
  item["versions"] = std::move(versions);
  return item;
}

// The aggregated APIs (APIServices with a service), grouped, in priority order.
std::vector<std::pair<std::string, std::vector<AggregatedGroupVersion>>> AggregatedGroups(
    const Context& ctx) {
  std::vector<std::pair<std::string, std::vector<AggregatedGroupVersion>>> out;
  if (!ctx.aggregator) return out;
  for (auto& v : ctx.aggregator->Versions()) {
    if (out.empty() || out.back().first != v.group)
      out.emplace_back(v.group, std::vector<AggregatedGroupVersion>{});
    out.back().second.push_back(std::move(v));
  }
  return out;
}

json::object AggregatedApiGroup(const std::string& group,
                                const std::vector<AggregatedGroupVersion>& versions) {
  json::array list;
  for (const auto& v : versions) list.push_back(GroupVersionEntry(group, v.version));
  json::object out;
  out["name"] = group;
  out["preferredVersion"] = list.front();
  out["versions"] = std::move(list);
  return out;
}

// An aggregated group in apidiscovery.k8s.io form: each version's resources
// from the APIResourceList its backend last answered (Stale before one came).
json::object AggregatedDiscoveryGroup(const std::string& group,
                                      const std::vector<AggregatedGroupVersion>& versions) {
  json::array out_versions;
  for (const auto& v : versions) {
    json::array resources;
    if (v.resources) {
      for (const auto& r : api::GetArray(*v.resources, {"resources"})) {
        std::string_view name = api::GetString(r, {"name"});
        size_t slash = name.find('/');
        json::object kind{
            {"group", group}, {"version", v.version}, {"kind", api::GetString(r, {"kind"})}};
        json::array verbs;
        if (const auto* vs = api::Find(r, {"verbs"}); vs && vs->is_array()) verbs = vs->get_array();
        if (slash != std::string_view::npos) {
          // A subresource: under its resource, when that came first.
          for (auto& parent : resources) {
            if (api::GetString(parent, {"resource"}) != name.substr(0, slash)) continue;
            auto& subs = parent.as_object()["subresources"];
            if (!subs.is_array()) subs = json::array();
            subs.as_array().push_back(json::object{
                {"subresource", name.substr(slash + 1)}, {"responseKind", kind}, {"verbs", verbs}});
          }
          continue;
        }
        const auto* namespaced = api::Find(r, {"namespaced"});
        resources.push_back(json::object{
            {"resource", name},
            {"responseKind", kind},
            {"scope", namespaced && namespaced->is_bool() && namespaced->get_bool() ? "Namespaced"
                                                                                    : "Cluster"},
            {"singularResource", api::GetString(r, {"singularName"})},
            {"verbs", verbs}});
      }
    }
    out_versions.push_back(json::object{{"version", v.version},
                                        {"resources", std::move(resources)},
                                        {"freshness", v.resources ? "Current" : "Stale"}});
  }
  return json::object{{"metadata", json::object{{"name", group}, {"creationTimestamp", nullptr}}},
                      {"versions", std::move(out_versions)}};
}

// The aggregated media type the client accepts ("v2", "v2beta1"), or "".
std::string AggregatedVersion(const Request& req) {
  std::string_view accept = req.Header("accept");
  size_t pos = 0;
  while (pos < accept.size()) {
    size_t comma = accept.find(',', pos);
    std::string_view part =
        accept.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    pos = comma == std::string_view::npos ? accept.size() : comma + 1;
    if (part.find("g=apidiscovery.k8s.io") == std::string_view::npos ||
        part.find("as=APIGroupDiscoveryList") == std::string_view::npos)
      continue;
    if (part.find("v=v2beta1") != std::string_view::npos) return "v2beta1";
    if (part.find("v=v2") != std::string_view::npos) return "v2";
  }
  return "";
}

Response Aggregated(const Context& ctx, const std::string& version, bool legacy_group) {
  json::array items;
  if (legacy_group) {
    items.push_back(AggregatedGroup(""));
  } else {
    for (const auto& g : Groups()) items.push_back(AggregatedGroup(g));
    for (const auto& [g, versions] : AggregatedGroups(ctx))
      items.push_back(AggregatedDiscoveryGroup(g, versions));
  }
  json::object doc;
  doc["kind"] = "APIGroupDiscoveryList";
  doc["apiVersion"] = "apidiscovery.k8s.io/" + version;
  doc["metadata"] = json::object();
  doc["items"] = std::move(items);
  Response r = JsonResponse(200, json::serialize(doc));
  r.content_type =
      fmt::format("application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList", version);
  return r;
}

}  // namespace

std::optional<Response> HandleDiscovery(const Context& ctx, const Request& req) {
  const std::string& path = req.path;
  std::string aggregated = AggregatedVersion(req);
  if (path == "/api" || path == "/api/") {
    if (!aggregated.empty()) return Aggregated(ctx, aggregated, true);
    json::object doc;
    doc["kind"] = "APIVersions";
    doc["versions"] = json::array{"v1"};
    doc["serverAddressByClientCIDRs"] = json::array{
        json::object{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", ctx.server_address}}};
    return JsonResponse(200, json::serialize(doc));
  }
  if (path == "/apis" || path == "/apis/") {
    if (!aggregated.empty()) return Aggregated(ctx, aggregated, false);
    json::array groups;
    for (const auto& g : Groups()) groups.push_back(ApiGroup(g));
    for (const auto& [g, versions] : AggregatedGroups(ctx))
      groups.push_back(AggregatedApiGroup(g, versions));
    json::object doc;
    doc["kind"] = "APIGroupList";
    doc["apiVersion"] = "v1";
    doc["groups"] = std::move(groups);
    return JsonResponse(200, json::serialize(doc));
  }
  if (path == "/api/v1") return JsonResponse(200, LegacyResourceList("", "v1"));
  if (path.starts_with("/apis/")) {
    std::string rest = path.substr(6);
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    size_t slash = rest.find('/');
    for (const auto& gv : api::ServedGroupVersions()) {
      if (gv.group.empty()) continue;
      if (slash == std::string::npos && rest == gv.group) {
        json::object doc = ApiGroup(gv.group);
        doc["kind"] = "APIGroup";
        doc["apiVersion"] = "v1";
        return JsonResponse(200, json::serialize(doc));
      }
      if (rest == gv.group + "/" + gv.version) {
        return JsonResponse(200, LegacyResourceList(gv.group, gv.version));
      }
    }
    for (const auto& [g, versions] :
         slash == std::string::npos ? AggregatedGroups(ctx) : decltype(AggregatedGroups(ctx)){}) {
      if (rest != g) continue;
      json::object doc = AggregatedApiGroup(g, versions);
      doc["kind"] = "APIGroup";
      doc["apiVersion"] = "v1";
      return JsonResponse(200, json::serialize(doc));
    }
  }
  return std::nullopt;
}

}  // namespace kiso::apiserver
