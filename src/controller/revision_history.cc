#include "controller/revision_history.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "api/object.h"
#include "api/resources.h"
#include "controller/controller.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Revisions() {
  return *api::FindResource("apps", "v1", "controllerrevisions");
}

}  // namespace

std::string RevisionName(std::string_view owner, std::string_view hash) {
  return fmt::format("{}-{}", owner, hash);
}

json::value RevisionData(const json::value& owner) {
  json::value tmpl = json::object();
  if (const auto* t = api::Find(owner, {"spec", "template"}); t && t->is_object()) tmpl = *t;
  tmpl.as_object()["$patch"] = "replace";
  return json::object{{"spec", json::object{{"template", std::move(tmpl)}}}};
}

const json::value* RevisionTemplate(const Revision& r) {
  return api::Find(r.data, {"spec", "template"});
}

std::vector<Revision> OwnedRevisions(const std::vector<json::value>& revisions,
                                     const json::value& owner) {
  const std::string_view ns = api::GetString(owner, {"metadata", "namespace"});
  const std::string_view uid = api::GetString(owner, {"metadata", "uid"});
  const std::string kind(api::GetString(owner, {"kind"}));
  std::vector<Revision> out;
  for (const auto& r : revisions) {
    if (api::GetString(r, {"metadata", "namespace"}) != ns || ControllerUid(r, kind) != uid)
      continue;
    Revision rev;
    rev.name = std::string(api::GetString(r, {"metadata", "name"}));
    rev.number = api::GetInt(r, {"revision"});
    if (const auto* d = api::Find(r, {"data"})) rev.data = *d;
    out.push_back(std::move(rev));
  }
  std::sort(out.begin(), out.end(), [](const Revision& a, const Revision& b) {
    return std::tie(a.number, a.name) < std::tie(b.number, b.name);
  });
  return out;
}

Result<Revision> EnsureRevision(client::Client* client, const json::value& owner,
                                std::string_view kind, const std::string& hash,
                                std::vector<Revision>& history) {
  const std::string ns(api::GetString(owner, {"metadata", "namespace"}));
  const std::string owner_name(api::GetString(owner, {"metadata", "name"}));
  json::value data = RevisionData(owner);
  const int64_t newest = history.empty() ? 0 : history.back().number;
  auto same = std::find_if(history.begin(), history.end(),
                           [&](const Revision& r) { return r.data == data; });
  if (same != history.end()) {
    if (same->number == newest) return *same;
    // An older template is current again (a rollback): it becomes the newest.
    auto stored = client->Get(Revisions(), ns, same->name);
    if (!stored.ok()) return stored.status();
    stored->as_object()["revision"] = newest + 1;
    auto updated = client->Update(Revisions(), ns, *stored);
    if (!updated.ok()) return updated.status();
    Revision r = *same;
    r.number = newest + 1;
    history.erase(same);
    history.push_back(r);
    return r;
  }
  json::object meta{{"name", RevisionName(owner_name, hash)}, {"namespace", ns}};
  json::object labels;
  if (const auto* l = api::Find(owner, {"spec", "template", "metadata", "labels"});
      l && l->is_object())
    labels = l->get_object();
  labels["controller.kubernetes.io/hash"] = hash;
  meta["labels"] = std::move(labels);
  if (const auto* a = api::Find(owner, {"metadata", "annotations"}); a && a->is_object()) {
    json::object annotations = a->get_object();
    annotations.erase("kubectl.kubernetes.io/last-applied-configuration");
    if (!annotations.empty()) meta["annotations"] = std::move(annotations);
  }
  meta["ownerReferences"] =
      json::array{json::object{{"apiVersion", "apps/v1"},
                               {"kind", kind},
                               {"name", owner_name},
                               {"uid", api::GetString(owner, {"metadata", "uid"})},
                               {"controller", true},
                               {"blockOwnerDeletion", true}}};
  json::value revision = json::object{{"apiVersion", "apps/v1"},
                                      {"kind", "ControllerRevision"},
                                      {"metadata", std::move(meta)},
                                      {"data", data},
                                      {"revision", newest + 1}};
  auto created = client->Create(Revisions(), ns, revision);
  if (!created.ok()) {
    if (created.status().code() != Code::kAlreadyExists) return created.status();
    // Made by an earlier pass the cache does not show yet, or a hash collision.
    auto existing = client->Get(Revisions(), ns, RevisionName(owner_name, hash));
    if (!existing.ok()) return existing.status();
    const auto* d = api::Find(*existing, {"data"});
    if (!d || *d != data ||
        ControllerUid(*existing, std::string(kind)) != api::GetString(owner, {"metadata", "uid"})) {
      return MakeStatus(Code::kConflict, "controller revision {} holds another template",
                        RevisionName(owner_name, hash));
    }
    created = std::move(existing);
  }
  Revision r{std::string(api::GetString(*created, {"metadata", "name"})),
             api::GetInt(*created, {"revision"}, newest + 1), data};
  history.push_back(r);
  return r;
}

Status TruncateHistory(client::Client* client, std::string_view ns,
                       const std::vector<Revision>& history, const std::set<std::string>& keep,
                       int64_t limit) {
  std::vector<const Revision*> spare;
  for (const auto& r : history) {
    if (!keep.count(r.name)) spare.push_back(&r);
  }
  const auto excess = static_cast<int64_t>(spare.size()) - std::max<int64_t>(limit, 0);
  for (int64_t i = 0; i < excess; ++i) {
    Status s = client->Delete(Revisions(), ns, spare[static_cast<size_t>(i)]->name);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  return Status::Ok();
}

}  // namespace kiso::controller
