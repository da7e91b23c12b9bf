#include "api/managed_fields.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "api/patch.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

// Fields the server owns, never tracked for a manager.
bool Untracked(const std::string& path) {
  static const auto& kSkip =
      *new std::vector<std::string>{"f:apiVersion",
                                    "f:kind",
                                    "f:metadata/f:name",
                                    "f:metadata/f:namespace",
                                    "f:metadata/f:uid",
                                    "f:metadata/f:resourceVersion",
                                    "f:metadata/f:generation",
                                    "f:metadata/f:creationTimestamp",
                                    "f:metadata/f:managedFields",
                                    "f:metadata/f:deletionTimestamp",
                                    "f:metadata/f:deletionGracePeriodSeconds",
                                    "f:metadata/f:selfLink"};
  // `s` itself or a path under it, without making "s/" for each (every field of
  // every write comes here).
  for (const auto& s : kSkip) {
    if (path.starts_with(s) && (path.size() == s.size() || path[s.size()] == '/')) return true;
  }
  return false;
}

std::vector<std::string> Segments(const std::string& path);

// The dotted field path with list elements elided, for ListStrategyFor.
std::string SchemaPath(const std::string& path) {
  std::string out;
  for (const auto& seg : Segments(path)) {
    if (!seg.starts_with("f:")) continue;
    if (!out.empty()) out += '.';
    out += seg.substr(2);
  }
  return out;
}

void Collect(const ResourceType& type, const json::value& v, const std::string& path,
             FieldSet& out) {
  if (const auto* obj = v.if_object(); obj && !obj->empty()) {
    for (const auto& [k, child] : *obj) {
      std::string p = (path.empty() ? "" : path + "/") + "f:" + std::string(k);
      if (Untracked(p)) continue;
      Collect(type, child, p, out);
    }
    return;
  }
  if (const auto* arr = v.if_array(); arr && !path.empty()) {
    ListStrategy strategy = ListStrategyFor(type.kind, SchemaPath(path));
    if (strategy.type == ListStrategy::Type::kMergeByKey) {
      for (const auto& e : *arr) {
        const auto* eo = e.if_object();
        const auto* key = eo ? eo->if_contains(strategy.key) : nullptr;
        if (!key) continue;
        std::string p = path + "/k:" + json::serialize(json::object{{strategy.key, *key}});
        out.insert(p + "/.");
        Collect(type, e, p, out);
      }
      return;
    }
    if (strategy.type == ListStrategy::Type::kMergePrimitives) {
      for (const auto& e : *arr) out.insert(path + "/v:" + json::serialize(e));
      return;
    }
  }
  if (!path.empty() && path != "f:metadata") out.insert(path);
}

// Splits a leaf path into segments, keeping k:{...} JSON intact.
std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t end = i;
    if (path.compare(i, 2, "k:") == 0 || path.compare(i, 2, "v:") == 0) {
      // JSON value: scan to its end by balance, then to the next '/'.
      int depth = 0;
      bool in_string = false;
      for (end = i + 2; end < path.size(); ++end) {
        char c = path[end];
        if (in_string) {
          if (c == '\\') {
            ++end;
          } else if (c == '"') {
            in_string = false;
          }
          continue;
        }
        if (c == '"') {
          in_string = true;
        } else if (c == '{' || c == '[') {
          ++depth;
        } else if (c == '}' || c == ']') {
          --depth;
        } else if (c == '/' && depth == 0) {
          break;
        }
      }
    } else {
      end = path.find('/', i);
      if (end == std::string::npos) end = path.size();
    }
    out.push_back(path.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

// The value at a leaf path, or nullptr.
const json::value* Lookup(const json::value& root, const std::string& path) {
  const json::value* cur = &root;
  for (const auto& seg : Segments(path)) {
    if (!cur) return nullptr;
    if (seg == ".") return cur;
    if (seg.starts_with("f:")) {
      const auto* o = cur->if_object();
      cur = o ? o->if_contains(seg.substr(2)) : nullptr;
    } else if (seg.starts_with("k:")) {
      auto key = ParseJson(seg.substr(2));
      const auto* arr = cur->if_array();
      cur = nullptr;
      if (!key.ok() || !arr || !key->is_object()) return nullptr;
      for (const auto& e : *arr) {
        const auto* eo = e.if_object();
        bool match = eo != nullptr;
        for (const auto& [k, v] : key->get_object()) {
          const auto* have = eo ? eo->if_contains(k) : nullptr;
          match = match && have && *have == v;
        }
        if (match) {
          cur = &e;
          break;
        }
      }
    } else if (seg.starts_with("v:")) {
      return cur;  // A set member: compared as part of the list.
    }
  }
  return cur;
}

// Removes the field at a leaf path from `root` (no-op when absent).
void RemovePath(json::value& root, const std::string& path) {
  auto segs = Segments(path);
  if (!segs.empty() && segs.back() == ".") segs.pop_back();
  json::value* cur = &root;
  for (size_t i = 0; i < segs.size() && cur; ++i) {
    const std::string& seg = segs[i];
    bool last = i + 1 == segs.size();
    if (seg.starts_with("f:")) {
      auto* o = cur->if_object();
      if (!o) return;
      if (last) {
        o->erase(seg.substr(2));
        return;
      }
      cur = o->if_contains(seg.substr(2));
    } else if (seg.starts_with("k:")) {
      auto key = ParseJson(seg.substr(2));
      auto* arr = cur->if_array();
      if (!key.ok() || !arr || !key->is_object()) return;
      json::value* found = nullptr;
      for (auto it = arr->begin(); it != arr->end(); ++it) {
        const auto* eo = it->if_object();
        bool match = eo != nullptr;
        for (const auto& [k, v] : key->get_object()) {
          const auto* have = eo ? eo->if_contains(k) : nullptr;
          match = match && have && *have == v;
        }
        if (match) {
          if (last) {
            arr->erase(it);
            return;
          }
          found = &*it;
          break;
        }
      }
      cur = found;
    } else if (seg.starts_with("v:")) {
      auto value = ParseJson(seg.substr(2));
      auto* arr = cur->if_array();
      if (!value.ok() || !arr) return;
      arr->erase(std::remove(arr->begin(), arr->end(), *value), arr->end());
      return;
    }
  }
}

struct Entry {
  std::string manager;
  std::string operation;
  std::string api_version;
  std::string time;
  std::string subresource;
  FieldSet fields;
};

std::vector<Entry> ReadEntries(const json::object& obj) {
  std::vector<Entry> out;
  const auto* list = Find(obj, {"metadata", "managedFields"});
  if (!list || !list->is_array()) return out;
  for (const auto& e : list->get_array()) {
    if (!e.is_object()) continue;
    Entry entry;
    entry.manager = GetString(e, {"manager"});
    entry.operation = GetString(e, {"operation"});
    entry.api_version = GetString(e, {"apiVersion"});
    entry.time = GetString(e, {"time"});
    entry.subresource = GetString(e, {"subresource"});
    if (const auto* f = Find(e, {"fieldsV1"})) entry.fields = FromFieldsV1(*f);
    out.push_back(std::move(entry));
  }
  return out;
}

void WriteEntries(const std::vector<Entry>& entries, json::object& obj) {
  json::array list;
  for (const auto& e : entries) {
    if (e.fields.empty()) continue;
    json::object o;
    o["manager"] = e.manager;
    o["operation"] = e.operation;
    o["apiVersion"] = e.api_version;
    o["time"] = e.time;
    o["fieldsType"] = "FieldsV1";
    o["fieldsV1"] = ToFieldsV1(e.fields);
    if (!e.subresource.empty()) o["subresource"] = e.subresource;
    list.push_back(std::move(o));
  }
  auto& meta = Child(obj, "metadata");
  if (list.empty()) {
    meta.erase("managedFields");
  } else {
    meta["managedFields"] = std::move(list);
  }
}

Entry& EntryFor(std::vector<Entry>& entries, const ResourceType& type, const std::string& manager,
                const std::string& operation) {
  for (auto& e : entries) {
    if (e.manager == manager && e.operation == operation && e.subresource.empty()) return e;
  }
  entries.push_back({manager, operation, type.GroupVersion(), "", "", {}});
  return entries.back();
}

}  // namespace

FieldSet FieldsOf(const ResourceType& type, const json::value& obj) {
  FieldSet out;
  Collect(type, obj, "", out);
  return out;
}

json::object ToFieldsV1(const FieldSet& set) {
  json::object root;
  for (const auto& path : set) {
    json::object* cur = &root;
    for (const auto& seg : Segments(path)) cur = &Child(*cur, seg);
  }
  return root;
}

FieldSet FromFieldsV1(const json::value& fields) {
  FieldSet out;
  std::function<void(const json::value&, const std::string&)> walk = [&](const json::value& v,
                                                                         const std::string& path) {
    const auto* o = v.if_object();
    if (!o || o->empty()) {
      if (!path.empty()) out.insert(path);
      return;
    }
    for (const auto& [k, child] : *o) {
      walk(child, (path.empty() ? "" : path + "/") + std::string(k));
    }
  };
  walk(fields, "");
  return out;
}

std::string PathString(const std::string& path) {
  std::string out;
  for (const auto& seg : Segments(path)) {
    if (seg == ".") continue;
    if (seg.starts_with("f:")) {
      out += "." + seg.substr(2);
    } else if (seg.starts_with("k:")) {
      auto key = ParseJson(seg.substr(2));
      std::string inner;
      if (key.ok() && key->is_object()) {
        for (const auto& [k, v] : key->get_object()) {
          inner += (inner.empty() ? "" : ",") + std::string(k) + "=" + json::serialize(v);
        }
      }
      out += "[" + inner + "]";
    } else if (seg.starts_with("v:")) {
      out += "[=" + seg.substr(2) + "]";
    }
  }
  return out;
}

namespace {

// Leaves of `now` (a field of the object at `path`) whose value differs from,
// or is missing in, `before`: what an Update changed. Walks both documents
// once; an unchanged subtree is skipped with one deep comparison.
void ChangedLeaves(const ResourceType& type, const json::value& now, const json::value* before,
                   const std::string& path, FieldSet& out) {
  if (before && *before == now) return;
  if (const auto* obj = now.if_object(); obj && !obj->empty()) {
    const json::object* old_obj = before ? before->if_object() : nullptr;
    for (const auto& [k, child] : *obj) {
      std::string p = (path.empty() ? "" : path + "/") + "f:" + std::string(k);
      if (Untracked(p)) continue;
      ChangedLeaves(type, child, old_obj ? old_obj->if_contains(k) : nullptr, p, out);
    }
    return;
  }
  if (const auto* arr = now.if_array(); arr && !path.empty()) {
    ListStrategy strategy = ListStrategyFor(type.kind, SchemaPath(path));
    const json::array* old_arr = before ? before->if_array() : nullptr;
    if (strategy.type == ListStrategy::Type::kMergeByKey) {
      for (const auto& e : *arr) {
        const auto* eo = e.if_object();
        const auto* key = eo ? eo->if_contains(strategy.key) : nullptr;
        if (!key) continue;
        // The element with the same key in the old list (a pointer into it, so no copy).
        const json::value* match = nullptr;
        for (size_t i = 0; old_arr && i < old_arr->size() && !match; ++i) {
          const auto* oo = (*old_arr)[i].if_object();
          const auto* ok = oo ? oo->if_contains(strategy.key) : nullptr;
          if (ok && *ok == *key) match = &(*old_arr)[i];
        }
        std::string p = path + "/k:" + json::serialize(json::object{{strategy.key, *key}});
        if (!match) out.insert(p + "/.");
        ChangedLeaves(type, e, match, p, out);
      }
      return;
    }
    if (strategy.type == ListStrategy::Type::kMergePrimitives) {
      for (const auto& e : *arr) {
        if (!old_arr || std::find(old_arr->begin(), old_arr->end(), e) == old_arr->end())
          out.insert(path + "/v:" + json::serialize(e));
      }
      return;
    }
  }
  if (!path.empty() && path != "f:metadata") out.insert(path);
}

// The fields an Update manager can own: everything but status (a subresource's)
// and managedFields itself.
FieldSet OwnableFields(const ResourceType& type, const json::object& obj) {
  FieldSet out;
  for (const auto& [k, child] : obj) {
    std::string p = "f:" + std::string(k);
    if (Untracked(p) || (type.has_status && k == "status")) continue;
    Collect(type, child, p, out);
  }
  return out;
}

}  // namespace

void RecordUpdate(const ResourceType& type, const std::string& manager, const json::object* old,
                  json::object& obj) {
  std::vector<Entry> entries = ReadEntries(old ? *old : obj);
  FieldSet changed;
  FieldSet fields = OwnableFields(type, obj);
  if (!old) {
    entries.clear();
    changed = fields;
  } else {
    for (const auto& [k, child] : obj) {
      std::string p = "f:" + std::string(k);
      if (Untracked(p) || (type.has_status && k == "status")) continue;
      ChangedLeaves(type, child, old->if_contains(k), p, changed);
    }
  }
  if (changed.empty() && old) {
    WriteEntries(entries, obj);
    return;
  }
  for (auto& e : entries) {
    // Changed fields move to this manager; fields that no longer exist are dropped.
    for (auto it = e.fields.begin(); it != e.fields.end();) {
      it = changed.contains(*it) || !fields.contains(*it) ? e.fields.erase(it) : std::next(it);
    }
  }
  Entry& mine = EntryFor(entries, type, manager, "Update");
  mine.fields.insert(changed.begin(), changed.end());
  mine.time = NowRfc3339();
  WriteEntries(entries, obj);
}

ApiStatus Apply(const ResourceType& type, const std::string& manager, bool force,
                const json::object& applied, json::object& live) {
  json::value applied_v(applied);
  if (auto* meta = applied_v.get_object().if_contains("metadata"); meta && meta->is_object())
    meta->get_object().erase("managedFields");
  FieldSet fields = FieldsOf(type, applied_v);
  std::vector<Entry> entries = ReadEntries(live);
  json::value live_v(live);
  // Conflicts: a field this apply would change that another manager owns.
  std::vector<Cause> causes;
  std::vector<std::string> descriptions;
  for (const auto& e : entries) {
    if (e.manager == manager && e.operation == "Apply") continue;
    for (const auto& p : fields) {
      if (!e.fields.contains(p) || p.ends_with("/.")) continue;
      const auto* a = Lookup(applied_v, p);
      const auto* l = Lookup(live_v, p);
      if (!a || !l || *a == *l) continue;
      std::string where = PathString(p);
      std::string msg = fmt::format("conflict with \"{}\"{}", e.manager,
                                    e.operation == "Update" ? " using " + e.api_version : "");
      causes.push_back({"FieldManagerConflict", msg, where});
      descriptions.push_back(fmt::format("{}: {}", msg, where));
    }
  }
  if (!causes.empty() && !force) {
    ApiError err;
    err.code = 409;
    err.reason = "Conflict";
    std::string list;
    for (const auto& d : descriptions) list += (list.empty() ? "" : "\n- ") + d;
    err.message = causes.size() == 1
                      ? fmt::format("Apply failed with 1 conflict: {}", descriptions[0])
                      : fmt::format("Apply failed with {} conflicts: {}", causes.size(),
                                    fmt::join(descriptions, "\n"));
    err.name = std::string(GetString(live, {"metadata", "name"}));
    err.group = type.group;
    err.kind = type.plural;
    err.causes = std::move(causes);
    return err;
  }
  // Fields this manager applied before and omits now are removed unless someone else owns them.
  for (auto& e : entries) {
    if (e.manager != manager || e.operation != "Apply") continue;
    for (const auto& p : e.fields) {
      if (fields.contains(p)) continue;
      bool shared = false;
      for (const auto& other : entries) {
        shared |= &other != &e && other.fields.contains(p);
      }
      if (!shared) RemovePath(live_v, p);
    }
  }
  auto merged = ApplyStrategicMergePatch(live_v, applied_v, type.kind);
  if (!merged.ok()) return BadRequest(merged.status().message());
  live = std::move(merged->get_object());
  for (auto& e : entries) {
    if (e.manager == manager && e.operation == "Apply") continue;
    if (force) {
      for (const auto& p : fields) e.fields.erase(p);
    }
  }
  Entry& mine = EntryFor(entries, type, manager, "Apply");
  mine.fields = fields;
  mine.time = NowRfc3339();
  WriteEntries(entries, live);
  return std::nullopt;
}

}  // namespace kiso::api
