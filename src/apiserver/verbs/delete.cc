// DELETE of one object and of a collection. DeleteOptions come from the body
// or the query: preconditions (uid, resourceVersion), gracePeriodSeconds and
// propagationPolicy. An object with finalizers (or that Foreground/Orphan adds
// one to) gets deletionTimestamp and stays until its finalizers are gone; a pod
// bound to a node stays for its grace period until the node confirms; a
// namespace becomes Terminating. Everything else is removed at once.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "api/selector.h"
#include "apiserver/admission/admission.h"
#include "apiserver/verbs/handlers.h"
#include "apiserver/verbs/list_filter.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

struct DeleteOptions {
  std::optional<int64_t> grace_period;
  std::string propagation;  // "", Background, Foreground, Orphan.
  std::string uid;
  std::string resource_version;
  bool dry_run = false;
};

// A DeleteOptions object's fields into `o`.
void ReadOptions(const json::object& b, DeleteOptions& o) {
  if (const auto* g = b.if_contains("gracePeriodSeconds"); g && g->is_int64())
    o.grace_period = g->get_int64();
  o.propagation = api::GetString(b, {"propagationPolicy"});
  if (b.contains("orphanDependents") && b.at("orphanDependents") == true) o.propagation = "Orphan";
  o.uid = api::GetString(b, {"preconditions", "uid"});
  o.resource_version = api::GetString(b, {"preconditions", "resourceVersion"});
  if (const auto* d = b.if_contains("dryRun"); d && d->is_array()) {
    for (const auto& v : d->get_array()) o.dry_run |= v == "All";
  }
}

api::ApiOr<DeleteOptions> ParseOptions(const Request& req) {
  DeleteOptions o;
  o.dry_run = DryRun(req);
  if (!req.body.empty() || req.object) {
    auto body = ParseBody(req);
    if (!body.ok() || !body->is_object()) {
      return api::BadRequest("DeleteOptions: " +
                             (body.ok() ? "not an object" : body.status().message()));
    }
    ReadOptions(body->get_object(), o);
  }
  if (auto g = req.Query("gracePeriodSeconds")) {
    try {
      o.grace_period = std::stoll(std::string(*g));
    } catch (...) {
      return api::BadRequest(fmt::format("invalid gracePeriodSeconds {:?}", *g));
    }
  }
  if (auto p = req.Query("propagationPolicy")) o.propagation = *p;
  if (!o.propagation.empty() && o.propagation != "Background" && o.propagation != "Foreground" &&
      o.propagation != "Orphan") {
    return api::BadRequest(fmt::format(
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{}\": "
        "supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
        o.propagation));
  }
  return o;
}

void AddFinalizer(json::object& meta, std::string_view name) {
  auto& list = meta["finalizers"];
  if (!list.is_array()) list = json::array();
  for (const auto& f : list.get_array()) {
    if (f.is_string() && f.get_string() == name) return;
  }
  list.get_array().push_back(json::string(name));
}

// Deletes one object; returns the response body object (the object itself, as upstream).
api::ApiOr<json::value> DeleteOne(const Context& ctx, const Target& t, const Request& req,
                                  const DeleteOptions& options) {
  bool admitted = false;
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto kv = ReadObject(ctx, t);
    if (!kv.ok()) return kv.error();
    auto current = DecodeStored(*kv);
    if (!current.ok()) return current.error();
    json::object obj = current->get_object();
    auto& meta = api::Child(obj, "metadata");
    std::string_view uid = api::GetString(meta, {"uid"});
    if (!options.uid.empty() && options.uid != uid) {
      return api::Conflict(*t.type, t.name,
                           fmt::format("Precondition failed: UID in precondition: {}, UID in "
                                       "object meta: {}",
                                       options.uid, uid));
    }
    if (!options.resource_version.empty() &&
        options.resource_version != std::to_string(kv->mod_revision)) {
      return api::Conflict(
          *t.type, t.name,
          fmt::format("Precondition failed: ResourceVersion in precondition: {}, ResourceVersion "
                      "in object meta: {}",
                      options.resource_version, kv->mod_revision));
    }
    bool already = meta.contains("deletionTimestamp");
    // Admission sees a delete once, with the object being deleted (webhooks
    // get it as oldObject); a repeated delete of a terminating one is not asked.
    if (ctx.admission && !admitted && !already) {
      const json::object& stored = current->get_object();
      AdmissionRequest admission{&ctx, &t, &req, "DELETE", &stored, options.dry_run};
      if (auto err = ctx.admission->Validate(admission, stored)) return *err;
      admitted = true;
    }
    bool bound_pod = t.type->kind == "Pod" && !api::GetString(obj, {"spec", "nodeName"}).empty();
    int64_t grace = 0;
    if (bound_pod) {
      const auto* spec_grace = api::Find(obj, {"spec", "terminationGracePeriodSeconds"});
      grace = options.grace_period.value_or(
          spec_grace && spec_grace->is_int64() ? spec_grace->get_int64() : 30);
    }
    bool remove_now;
    if (already) {
      // A repeated delete changes nothing, except forcing a bound pod (grace 0).
      if (!(bound_pod && grace == 0)) return std::move(*current);
      const auto* f = meta.if_contains("finalizers");
      remove_now = !f || !f->is_array() || f->get_array().empty();
    } else {
      // Upstream's default propagation for the kinds kiso serves is Background.
      if (options.propagation == "Foreground") AddFinalizer(meta, "foregroundDeletion");
      if (options.propagation == "Orphan") AddFinalizer(meta, "orphan");
      const auto* f = meta.if_contains("finalizers");
      bool has_finalizers = f && f->is_array() && !f->get_array().empty();
      const auto* spec_f = api::Find(obj, {"spec", "finalizers"});
      bool ns_finalizers = t.type->kind == "Namespace" && spec_f && spec_f->is_array() &&
                           !spec_f->get_array().empty();
      remove_now = !has_finalizers && !ns_finalizers && !(bound_pod && grace > 0);
    }
    if (!remove_now) {
      if (!already) meta["deletionTimestamp"] = api::NowRfc3339();
      meta["deletionGracePeriodSeconds"] = bound_pod ? grace : 0;
      if (t.type->kind == "Namespace") api::Child(obj, "status")["phase"] = "Terminating";
      if (options.dry_run) return json::value(std::move(obj));
      auto encoded = EncodeForStore(obj);
      if (!encoded.ok()) return encoded.error();
      auto updated = ctx.store->Update(kv->key, *encoded, kv->mod_revision);
      if (updated.ok()) {
        api::Child(obj, "metadata")["resourceVersion"] = std::to_string(updated->mod_revision);
        return json::value(std::move(obj));
      }
      if (updated.status().code() == Code::kConflict) continue;
      if (updated.status().code() == Code::kNotFound) return api::NotFound(*t.type, t.name);
      return api::FromStatus(updated.status());
    }
    if (options.dry_run) return std::move(*current);
    auto removed = RemoveObject(ctx, t, *kv, current->get_object());
    if (removed.ok()) return std::move(*current);
    if (removed.error().code == 409) continue;  // Changed meanwhile: decide again.
    return removed.error();
  }
  return api::ModifiedConflict(*t.type, t.name);
}

}  // namespace

Response HandleDelete(const Context& ctx, const Target& t, const Request& req) {
  auto options = ParseOptions(req);
  if (!options.ok()) return ErrorResponse(options.error());
  auto result = DeleteOne(ctx, t, req, *options);
  if (!result.ok()) return ErrorResponse(result.error());
  return ObjectResponse(200, *result);
}

Response HandleDeleteCollection(const Context& ctx, const Target& t, const Request& req) {
  auto options = ParseOptions(req);
  if (!options.ok()) return ErrorResponse(options.error());
  auto filter = ListFilter::FromRequest(t, req);
  if (!filter.ok()) return ErrorResponse(filter.error());
  auto current = ctx.store->CurrentRevision();
  if (!current.ok()) return ErrorResponse(api::FromStatus(current.status()));
  ctx.cache->WaitFor(*current, std::chrono::steady_clock::now() + std::chrono::seconds(3));
  auto snap = ctx.cache->List(filter->prefix);
  std::string items;
  for (const auto& obj : snap.objects) {
    if (!filter->Matches(*obj)) continue;
    Target one = t;
    one.ns = obj->ns;
    one.name = obj->name;
    auto result = DeleteOne(ctx, one, req, *options);
    if (!result.ok()) {
      if (result.error().code == 404) continue;  // Already gone.
      return ErrorResponse(result.error());
    }
    if (!items.empty()) items += ',';
    items += json::serialize(*result);
  }
  return JsonResponse(
      200, fmt::format(R"({{"kind":"{}List","apiVersion":"{}","metadata":{{}},"items":[{}]}})",
                       t.type->kind, t.type->GroupVersion(), items));
}

namespace {

// The budget's answer to one more disruption, as the eviction subresource
// gives it (pkg/registry/core/pod/storage/eviction.go): nullopt when the pod may go.
api::ApiStatus TakeDisruption(json::object& pdb, const std::string& pod_name) {
  const auto* generation = api::Find(pdb, {"metadata", "generation"});
  const auto* observed = api::Find(pdb, {"status", "observedGeneration"});
  auto too_many = [&](std::string cause) {
    api::ApiError e;
    e.code = 429;
    e.reason = "TooManyRequests";
    e.message = "Cannot evict pod as it would violate the pod's disruption budget.";
    e.causes.push_back({"DisruptionBudget", std::move(cause), ""});
    return e;
  };
  const std::string name(api::GetString(pdb, {"metadata", "name"}));
  if (!observed || !observed->is_int64() ||
      (generation && generation->is_int64() && observed->get_int64() < generation->get_int64())) {
    return too_many(
        fmt::format("The disruption budget {} is still being processed by the server.", name));
  }
  const auto* allowed = api::Find(pdb, {"status", "disruptionsAllowed"});
  const int64_t n = allowed && allowed->is_int64() ? allowed->get_int64() : 0;
  if (n < 0) {
    return api::Forbidden(*api::FindResource("", "v1", "pods"), pod_name,
                          "pdb disruptions allowed is negative");
  }
  if (n == 0) {
    const auto* desired = api::Find(pdb, {"status", "desiredHealthy"});
    const auto* current = api::Find(pdb, {"status", "currentHealthy"});
    return too_many(
        fmt::format("The disruption budget {} needs {} healthy pods and has {} currently", name,
                    desired && desired->is_int64() ? desired->get_int64() : 0,
                    current && current->is_int64() ? current->get_int64() : 0));
  }
  auto& status = api::Child(pdb, "status");
  status["disruptionsAllowed"] = n - 1;
  api::Child(status, "disruptedPods")[pod_name] = api::NowRfc3339();
  return std::nullopt;
}

}  // namespace

Response HandleEviction(const Context& ctx, const Target& t, const Request& req) {
  auto body = ParseBody(req);
  if (!body.ok() || !body->is_object()) {
    return ErrorResponse(api::BadRequest(
        "Eviction: " + (body.ok() ? std::string("not an object") : body.status().message())));
  }
  std::string_view named = api::GetString(*body, {"metadata", "name"});
  if (!named.empty() && named != t.name) {
    return ErrorResponse(api::BadRequest("name in URL does not match name in Eviction object"));
  }
  DeleteOptions options;
  options.dry_run = DryRun(req);
  if (const auto* d = api::Find(*body, {"deleteOptions"}); d && d->is_object())
    ReadOptions(d->get_object(), options);
  Target pod_target = t;
  pod_target.subresource.clear();
  pod_target.verb = "delete";
  auto pod = ReadFromStore(ctx, *t.type, t.ns, t.name);
  if (!pod) return ErrorResponse(api::NotFound(*t.type, t.name));
  // Pods that disrupt nothing go without asking a budget: ended, not yet
  // running, or already on their way out.
  std::string_view phase = api::GetString(*pod, {"status", "phase"});
  const bool any_budget = phase != "Succeeded" && phase != "Failed" && phase != "Pending" &&
                          api::GetString(*pod, {"metadata", "deletionTimestamp"}).empty();
  if (any_budget) {
    const auto& budgets = *api::FindResource("policy", "v1", "poddisruptionbudgets");
    const api::Labels labels = api::GetLabels(*pod);
    std::vector<json::object> matching;
    for (auto& pdb : ListFromCache(ctx, budgets, t.ns)) {
      auto selector = api::BudgetSelector(json::value(pdb));
      if (selector && selector->Matches(labels)) matching.push_back(std::move(pdb));
    }
    if (matching.size() > 1) {
      return ErrorResponse(api::InternalError(
          "This pod has more than one PodDisruptionBudget, which the eviction subresource does "
          "not support."));
    }
    // A pod that is not ready disrupts nothing the budget counts: with
    // unhealthyPodEvictionPolicy AlwaysAllow it goes regardless, with
    // IfHealthyBudget (the default) while the budget has its healthy pods.
    bool budget_applies = matching.size() == 1;
    if (budget_applies && !api::ConditionTrue(*pod, "Ready")) {
      const auto& b = matching[0];
      auto count = [&](std::string_view field) {
        const auto* v = api::Find(b, {"status", field});
        return v && v->is_int64() ? v->get_int64() : 0;
      };
      budget_applies =
          api::GetString(b, {"spec", "unhealthyPodEvictionPolicy"}) != "AlwaysAllow" &&
          !(count("currentHealthy") >= count("desiredHealthy") && count("desiredHealthy") > 0);
    }
    if (budget_applies && !options.dry_run) {
      Target pdb_target{&budgets, t.ns,
                        std::string(api::GetString(matching[0], {"metadata", "name"})), "status",
                        "update"};
      auto taken = GuaranteedUpdate(ctx, pdb_target, req,
                                    [&](json::object& pdb) { return TakeDisruption(pdb, t.name); });
      if (!taken.ok()) return ErrorResponse(taken.error());
    }
  }
  auto result = DeleteOne(ctx, pod_target, req, options);
  if (!result.ok()) return ErrorResponse(result.error());
  return JsonResponse(
      201, R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201})");
}

}  // namespace kiso::apiserver
