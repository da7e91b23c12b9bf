#include "apiserver/admission/resource_quota.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "api/quota.h"
#include "apiserver/admission/admission.h"
#include "apiserver/verbs/handlers.h"
#include "apiserver/watch_cache.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

const api::ResourceType& ResourceQuotas() { return *api::FindResource("", "v1", "resourcequotas"); }

// "pods=1,requests.cpu=500m": upstream's listing of amounts, sorted by name,
// each formatted as its hard limit is written.
std::string Listing(const api::ResourceList& amounts, const json::value* hard) {
  std::string out;
  for (const auto& [name, milli] : amounts) {
    out += fmt::format("{}{}={}", out.empty() ? "" : ",", name,
                       api::FormatQuantityLike(milli, hard ? api::Find(*hard, {name}) : nullptr));
  }
  return out;
}

}  // namespace

api::ApiStatus ChargeQuotas(const Context& ctx, const Target& t, const json::object& obj,
                            const json::object* old, Reservation* out) {
  if (!t.type->namespaced || t.ns.empty() || !t.subresource.empty()) return std::nullopt;
  // The cache says whether the namespace has quotas at all (most have none);
  // those it has are then read from the store, with their revisions.
  std::string prefix = ResourceQuotas().StorePrefix() + t.ns + "/";
  if (ctx.cache->List(prefix).objects.empty()) return std::nullopt;
  api::ResourceList delta = api::QuotaUsage(*t.type, obj);
  if (old) {
    for (const auto& [name, milli] : api::QuotaUsage(*t.type, *old)) {
      if (auto it = delta.find(name); it != delta.end()) it->second -= milli;
    }
  }
  std::erase_if(delta, [](const auto& e) { return e.second <= 0; });
  if (delta.empty()) return std::nullopt;
  std::string name(api::GetString(obj, {"metadata", "name"}));

  auto listed = ctx.store->Range(store::KeyRange::Prefix(prefix), {});
  if (!listed.ok()) return api::FromStatus(listed.status());
  for (const auto& kv : listed->kvs) {
    auto parsed = api::ParseJson(kv.value);
    if (!parsed.ok() || !parsed->is_object()) continue;
    json::object& quota = parsed->get_object();
    if (!api::QuotaMatches(quota, *t.type, obj)) continue;
    std::string quota_name(api::GetString(quota, {"metadata", "name"}));
    if (!old && t.type->group.empty() && t.type->plural == "pods") {
      auto missing = api::QuotaMissingResources(quota, obj);
      if (!missing.empty()) {
        return AdmissionForbidden(
            t, name,
            fmt::format("failed quota: {}: must specify {}", quota_name, fmt::join(missing, "; ")));
      }
    }
    const json::value* hard_v = api::Find(quota, {"spec", "hard"});
    api::ResourceList hard = api::ParseResourceList(hard_v);
    api::ResourceList used = api::ParseResourceList(api::Find(quota, {"status", "used"}));
    api::ResourceList requested, used_now, limited, charged;
    for (const auto& [resource, amount] : delta) {
      auto h = hard.find(resource);
      if (h == hard.end()) continue;
      auto u = used.find(resource);
      if (u == used.end()) {
        return AdmissionForbidden(
            t, name,
            fmt::format("status unknown for quota: {}, resource: {}", quota_name, resource));
      }
      if (u->second + amount > h->second) {
        requested[resource] = amount;
        used_now[resource] = u->second;
        limited[resource] = h->second;
      }
      charged[resource] = u->second + amount;
    }
    if (!requested.empty()) {
      return AdmissionForbidden(
          t, name,
          fmt::format("exceeded quota: {}, requested: {}, used: {}, limited: {}", quota_name,
                      Listing(requested, hard_v), Listing(used_now, hard_v),
                      Listing(limited, hard_v)));
    }
    if (charged.empty() || !out) continue;
    auto& status_used = api::Child(api::Child(quota, "status"), "used");
    for (const auto& [resource, milli] : charged) {
      status_used[resource] = api::FormatQuantityLike(milli, api::Find(*hard_v, {resource}));
    }
    auto encoded = EncodeForStore(quota);
    if (!encoded.ok()) return encoded.error();
    out->compares.push_back(store::Compare::ModRevisionIs(kv.key, kv.mod_revision));
    out->ops.push_back(store::TxnOp::Put(kv.key, std::move(*encoded)));
  }
  return std::nullopt;
}

bool RevisionsMoved(const Context& ctx, const std::vector<store::Compare>& compares) {
  for (const auto& c : compares) {
    if (c.target != store::Compare::Target::kModRevision || c.op != store::Compare::Op::kEqual)
      continue;
    auto kv = ctx.store->Get(c.key);
    if (!kv.ok() || kv->mod_revision != c.number) return true;
  }
  return false;
}

}  // namespace kiso::apiserver
