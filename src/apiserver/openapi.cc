// A minimal OpenAPI v3: for each group-version, the PATCH operation of every
// kind with the fieldValidation parameter, so kubectl create/apply/replace send
// fieldValidation=Strict and leave validation to the server. The patch content
// types deliberately omit strategic merge, so kubectl builds its SMP from its
// compiled-in types rather than looking for schemas here (see
// ../shared/notes/kube-api-surface.md §3). No schemas: `kubectl explain` does not work.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "apiserver/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

constexpr std::string_view kHash = "kiso-0001";

std::string GvPath(const std::string& group, const std::string& version) {
  return group.empty() ? "api/" + version : "apis/" + group + "/" + version;
}

std::string Document(const std::string& group, const std::string& version) {
  json::object paths;
  for (const auto& t : api::BuiltinResources()) {
    if (t.group != group || t.version != version) continue;
    std::string base = "/" + GvPath(group, version) + "/";
    std::string path = t.namespaced ? base + "namespaces/{namespace}/" + t.plural + "/{name}"
                                    : base + t.plural + "/{name}";
    json::object content{{"application/json-patch+json", json::object()},
                         {"application/merge-patch+json", json::object()},
                         {"application/apply-patch+yaml", json::object()}};
    json::object patch;
    patch["x-kubernetes-group-version-kind"] =
        json::object{{"group", group}, {"version", version}, {"kind", t.kind}};
    patch["parameters"] = json::array{
        json::object{{"name", "fieldValidation"},
                     {"in", "query"},
                     {"schema", json::object{{"type", "string"}}}},
        json::object{
            {"name", "dryRun"}, {"in", "query"}, {"schema", json::object{{"type", "string"}}}},
        json::object{{"name", "fieldManager"},
                     {"in", "query"},
                     {"schema", json::object{{"type", "string"}}}}};
    patch["requestBody"] = json::object{{"content", std::move(content)}};
    patch["responses"] = json::object();
    paths[path] = json::object{{"patch", std::move(patch)}};
  }
  json::object doc;
  doc["openapi"] = "3.0.0";
  doc["info"] = json::object{{"title", "Kubernetes"}, {"version", "v1.32.0"}};
  doc["paths"] = std::move(paths);
  doc["components"] = json::object{{"schemas", json::object()}};
  return json::serialize(doc);
}

}  // namespace

std::optional<Response> HandleOpenApi(const Request& req) {
  if (req.path == "/openapi/v3" || req.path == "/openapi/v3/") {
    json::object paths;
    for (const auto& gv : api::ServedGroupVersions()) {
      std::string p = GvPath(gv.group, gv.version);
      paths[p] =
          json::object{{"serverRelativeURL", fmt::format("/openapi/v3/{}?hash={}", p, kHash)}};
    }
    return JsonResponse(200, json::serialize(json::object{{"paths", std::move(paths)}}));
  }
  if (req.path.starts_with("/openapi/v3/")) {
    std::string rest = req.path.substr(12);
    for (const auto& gv : api::ServedGroupVersions()) {
      if (rest == GvPath(gv.group, gv.version)) {
        Response r = JsonResponse(200, Document(gv.group, gv.version));
        r.headers.emplace_back("Cache-Control", "public, immutable");
        return r;
      }
    }
  }
  return std::nullopt;
}

}  // namespace kiso::apiserver
