#include "api/custom_resource.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <set>

#include "api/object.h"
#include "api/structural.h"
#include "api/validation.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> Strings(const json::value* v) {
  std::vector<std::string> out;
  if (!v || !v->is_array()) return out;
  for (const auto& s : v->get_array()) {
    if (s.is_string()) out.emplace_back(s.get_string());
  }
  return out;
}

// A kind: an upper-case-led identifier ("CronTab").
bool KindName(std::string_view s) {
  if (s.empty() || s.size() > 63 || !(s.front() >= 'A' && s.front() <= 'Z')) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string Quoted(std::string_view s) { return fmt::format("\"{}\"", s); }

}  // namespace

const json::value* AtJsonPath(const json::value& obj, std::string_view path) {
  if (path.starts_with("{") && path.ends_with("}")) path = path.substr(1, path.size() - 2);
  if (!path.starts_with(".")) return nullptr;
  const json::value* cur = &obj;
  size_t i = 1;
  while (i <= path.size() && cur) {
    size_t end = path.find_first_of(".[", i);
    if (end == std::string_view::npos) end = path.size();
    std::string_view key = path.substr(i, end - i);
    if (!key.empty()) {
      if (!cur->is_object()) return nullptr;
      cur = cur->get_object().if_contains(key);
    }
    i = end;
    while (cur && i < path.size() && path[i] == '[') {
      size_t close = path.find(']', i);
      if (close == std::string_view::npos || !cur->is_array()) return nullptr;
      size_t index = 0;
      for (char c : path.substr(i + 1, close - i - 1)) {
        if (c < '0' || c > '9') return nullptr;
        index = index * 10 + static_cast<size_t>(c - '0');
        if (index > 1'000'000) return nullptr;
      }
      const auto& a = cur->get_array();
      cur = index < a.size() ? &a[index] : nullptr;
      i = close + 1;
    }
    if (i >= path.size()) break;
    if (path[i] == '.') ++i;
  }
  return cur;
}

bool CrdCondition(const json::value& crd, std::string_view type) {
  for (const auto& c : GetArray(crd, {"status", "conditions"})) {
    if (GetString(c, {"type"}) == type && GetString(c, {"status"}) == "True") return true;
  }
  return false;
}

void DefaultCrd(json::object& crd) {
  auto& spec = Child(crd, "spec");
  auto& names = Child(spec, "names");
  std::string kind(GetString(names, {"kind"}));
  if (!kind.empty()) {
    if (GetString(names, {"singular"}).empty()) names["singular"] = Lower(kind);
    if (GetString(names, {"listKind"}).empty()) names["listKind"] = kind + "List";
  }
  auto& conversion = Child(spec, "conversion");
  if (GetString(conversion, {"strategy"}).empty()) conversion["strategy"] = "None";
}

std::vector<Cause> ValidateCrd(const json::object& crd) {
  std::vector<Cause> causes;
  auto invalid = [&](std::string field, std::string_view shown, std::string_view detail) {
    causes.push_back({"FieldValueInvalid", fmt::format("Invalid value: {}: {}", shown, detail),
                      std::move(field)});
  };
  auto required = [&](std::string field, std::string_view detail = "") {
    causes.push_back({"FieldValueRequired",
                      detail.empty() ? "Required value" : fmt::format("Required value: {}", detail),
                      std::move(field)});
  };
  std::string_view name = GetString(crd, {"metadata", "name"});
  std::string_view group = GetString(crd, {"spec", "group"});
  std::string_view plural = GetString(crd, {"spec", "names", "plural"});
  std::string_view singular = GetString(crd, {"spec", "names", "singular"});
  std::string_view kind = GetString(crd, {"spec", "names", "kind"});
  std::string_view list_kind = GetString(crd, {"spec", "names", "listKind"});
  if (name != fmt::format("{}.{}", plural, group)) {
    invalid("metadata.name", Quoted(name), "must be spec.names.plural+\".\"+spec.group");
  }
  if (group.empty()) {
    required("spec.group");
  } else if (auto why = CheckDns1123Subdomain(group); !why.empty()) {
    invalid("spec.group", Quoted(group), why);
  } else if (group.find('.') == std::string_view::npos) {
    invalid("spec.group", Quoted(group), "should be a domain with at least one dot");
  }
  if (plural.empty()) {
    required("spec.names.plural");
  } else if (auto why = CheckDns1123Label(plural); !why.empty()) {
    invalid("spec.names.plural", Quoted(plural), why);
  }
  if (auto why = CheckDns1123Label(singular); !singular.empty() && !why.empty()) {
    invalid("spec.names.singular", Quoted(singular), why);
  }
  if (kind.empty()) {
    required("spec.names.kind");
  } else if (!KindName(kind)) {
    invalid("spec.names.kind", Quoted(kind),
            "must be a valid kind: a letter A-Z then letters and digits");
  }
  if (!list_kind.empty() && !KindName(list_kind))
    invalid("spec.names.listKind", Quoted(list_kind), "must be a valid kind");
  if (!kind.empty() && list_kind == kind)
    invalid("spec.names.listKind", Quoted(list_kind), "kind and listKind may not be the same");
  size_t i = 0;
  for (const auto& s : GetArray(crd, {"spec", "names", "shortNames"})) {
    std::string why = s.is_string() ? CheckDns1123Label(s.get_string()) : "must be a string";
    if (!why.empty()) {
      invalid(fmt::format("spec.names.shortNames[{}]", i), json::serialize(s), why);
    }
    ++i;
  }
  std::string_view scope = GetString(crd, {"spec", "scope"});
  if (scope.empty()) {
    required("spec.scope");
  } else if (scope != "Namespaced" && scope != "Cluster") {
    causes.push_back(
        {"FieldValueNotSupported",
         fmt::format("Unsupported value: {}: supported values: \"Cluster\", \"Namespaced\"",
                     Quoted(scope)),
         "spec.scope"});
  }
  std::string_view strategy = GetString(crd, {"spec", "conversion", "strategy"});
  if (!strategy.empty() && strategy != "None") {
    causes.push_back({"FieldValueNotSupported",
                      fmt::format("Unsupported value: {}: supported values: \"None\" (kiso has no "
                                  "conversion webhooks)",
                                  Quoted(strategy)),
                      "spec.conversion.strategy"});
  }
  const auto& versions = GetArray(crd, {"spec", "versions"});
  if (versions.empty())
    required("spec.versions", "must have exactly one version marked as storage version");
  std::set<std::string> seen;
  int storage = 0;
  i = 0;
  for (const auto& v : versions) {
    std::string f = fmt::format("spec.versions[{}]", i++);
    std::string_view vname = GetString(v, {"name"});
    if (vname.empty()) {
      required(f + ".name");
    } else if (auto why = CheckDns1035Label(vname); !why.empty()) {
      invalid(f + ".name", Quoted(vname), why);
    } else if (!seen.insert(std::string(vname)).second) {
      causes.push_back({"FieldValueInvalid",
                        fmt::format("Invalid value: {}: must appear only once", Quoted(vname)),
                        f + ".name"});
    }
    const auto* st = Find(v, {"storage"});
    if (st && st->is_bool() && st->get_bool()) ++storage;
    const auto* schema = Find(v, {"schema", "openAPIV3Schema"});
    if (!schema) {
      required(f + ".schema.openAPIV3Schema", "schemas are required");
    } else {
      auto more = CheckStructural(*schema, f + ".schema.openAPIV3Schema");
      causes.insert(causes.end(), more.begin(), more.end());
    }
    if (const auto* scale = Find(v, {"subresources", "scale"}); scale && scale->is_object()) {
      for (std::string_view p : {"specReplicasPath", "statusReplicasPath"}) {
        std::string_view path = GetString(*scale, {p});
        if (path.empty()) {
          required(fmt::format("{}.subresources.scale.{}", f, p));
        } else if (!path.starts_with(".")) {
          invalid(fmt::format("{}.subresources.scale.{}", f, p), Quoted(path),
                  "should be a json path under either .spec or .status");
        }
      }
    }
    size_t c = 0;
    for (const auto& col : GetArray(v, {"additionalPrinterColumns"})) {
      std::string cf = fmt::format("{}.additionalPrinterColumns[{}]", f, c++);
      if (GetString(col, {"name"}).empty()) required(cf + ".name");
      std::string_view type = GetString(col, {"type"});
      static const std::set<std::string_view> kTypes = {"integer", "number", "string", "boolean",
                                                        "date"};
      if (!kTypes.contains(type)) {
        causes.push_back({"FieldValueNotSupported",
                          fmt::format("Unsupported value: {}: supported values: \"boolean\", "
                                      "\"date\", \"integer\", \"number\", \"string\"",
                                      Quoted(type)),
                          cf + ".type"});
      }
      if (GetString(col, {"jsonPath"}).empty()) required(cf + ".jsonPath");
    }
  }
  if (!versions.empty() && storage != 1) {
    invalid("spec.versions", fmt::format("{} storage versions", storage),
            "must have exactly one version marked as storage version");
  }
  return causes;
}

std::vector<ResourceType> CustomResourceTypes(const json::value& crd) {
  std::vector<ResourceType> out;
  if (!crd.is_object() || !ValidateCrd(crd.get_object()).empty()) return out;
  const auto* spec = Find(crd, {"spec"});
  std::string storage;
  bool storage_served = false;
  for (const auto& v : GetArray(*spec, {"versions"})) {
    const auto* st = Find(v, {"storage"});
    const auto* served = Find(v, {"served"});
    if (st && st->is_bool() && st->get_bool()) {
      storage = GetString(v, {"name"});
      storage_served = served && served->is_bool() && served->get_bool();
    }
  }
  bool terminating = !GetString(crd, {"metadata", "deletionTimestamp"}).empty();
  std::string kind(GetString(*spec, {"names", "kind"}));
  for (const auto& v : GetArray(*spec, {"versions"})) {
    const auto* served = Find(v, {"served"});
    if (!served || !served->is_bool() || !served->get_bool()) continue;
    ResourceType t;
    t.group = GetString(*spec, {"group"});
    t.version = GetString(v, {"name"});
    t.kind = kind;
    // The other served versions are stored at the storage version (`None`
    // conversion: only apiVersion differs; api/conversion.h). Not yet: a
    // storage version that is not served keeps each object at the version it
    // was written at.
    if (storage_served && t.version != storage) t.storage_version = storage;
    t.plural = GetString(*spec, {"names", "plural"});
    t.singular = GetString(*spec, {"names", "singular"});
    if (t.singular.empty()) t.singular = Lower(kind);
    t.namespaced = GetString(*spec, {"scope"}) == "Namespaced";
    t.short_names = Strings(Find(*spec, {"names", "shortNames"}));
    t.categories = Strings(Find(*spec, {"names", "categories"}));
    const std::vector<std::string> sub_verbs = {"get", "patch", "update"};
    auto info = std::make_shared<CustomResourceInfo>();
    if (const auto* st = Find(v, {"subresources", "status"}); st && st->is_object()) {
      t.subresources.push_back({"status", "", "", kind, sub_verbs});
      t.has_status = true;
    }
    if (const auto* sc = Find(v, {"subresources", "scale"}); sc && sc->is_object()) {
      t.subresources.push_back({"scale", "autoscaling", "v1", "Scale", sub_verbs});
      info->spec_replicas_path = GetString(*sc, {"specReplicasPath"});
      info->status_replicas_path = GetString(*sc, {"statusReplicasPath"});
      info->label_selector_path = GetString(*sc, {"labelSelectorPath"});
    }
    info->crd_name = GetString(crd, {"metadata", "name"});
    info->storage_version = storage;
    if (const auto* schema = Find(v, {"schema", "openAPIV3Schema"}))
      info->schema = std::make_shared<const json::value>(*schema);
    const auto& columns = GetArray(v, {"additionalPrinterColumns"});
    for (const auto& c : columns) {
      PrinterColumn col;
      col.name = GetString(c, {"name"});
      col.type = GetString(c, {"type"});
      col.format = GetString(c, {"format"});
      col.description = GetString(c, {"description"});
      col.json_path = GetString(c, {"jsonPath"});
      if (const auto* p = Find(c, {"priority"}); p && p->is_int64())
        col.priority = static_cast<int>(p->get_int64());
      info->columns.push_back(std::move(col));
    }
    if (columns.empty()) {
      info->columns.push_back({"Age", "date", "", "", ".metadata.creationTimestamp", 0});
    }
    info->terminating = terminating;
    info->fingerprint = fmt::format("{}/{}/{}", GetString(crd, {"metadata", "uid"}),
                                    terminating ? "terminating" : "", json::serialize(*spec));
    t.custom = std::move(info);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace kiso::api
