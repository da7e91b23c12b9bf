#include "api/patch.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "api/object.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

// ---- JSON pointer (RFC 6901) and JSON patch (RFC 6902) ----

Result<std::vector<std::string>> ParsePointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer.front() != '/') {
    return MakeStatus(Code::kInvalidArgument, "invalid JSON pointer {:?}: must start with '/'",
                      pointer);
  }
  size_t pos = 1;
  while (true) {
    size_t next = pointer.find('/', pos);
    std::string raw(pointer.substr(pos, next == std::string_view::npos ? next : next - pos));
    std::string token;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token += raw[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        token += raw[i];
      }
    }
    tokens.push_back(std::move(token));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return tokens;
}

Result<size_t> ArrayIndex(const std::string& token, size_t size, bool allow_end) {
  if (allow_end && token == "-") return size;
  if (token.empty() || token.size() > 9 || (token.size() > 1 && token[0] == '0') ||
      !std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return MakeStatus(Code::kInvalidArgument, "invalid array index {:?}", token);
  size_t index = std::stoul(token);
  if (index > size || (!allow_end && index == size))
    return MakeStatus(Code::kInvalidArgument, "array index {} out of bounds", index);
  return index;
}

// The parent container of the pointer's last token.
Result<json::value*> Parent(json::value& doc, const std::vector<std::string>& tokens,
                            std::string_view pointer) {
  json::value* cur = &doc;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (auto* obj = cur->if_object()) {
      auto it = obj->find(tokens[i]);
      if (it == obj->end())
        return MakeStatus(Code::kInvalidArgument, "doc is missing path: {:?}", pointer);
      cur = &it->value();
    } else if (auto* arr = cur->if_array()) {
      KISO_ASSIGN_OR_RETURN(size_t index, ArrayIndex(tokens[i], arr->size(), false));
      cur = &(*arr)[index];
    } else {
      return MakeStatus(Code::kInvalidArgument, "doc is missing path: {:?}", pointer);
    }
  }
  return cur;
}

// The value the pointer names (not a copy).
Result<json::value*> Find(json::value& doc, std::string_view pointer) {
  KISO_ASSIGN_OR_RETURN(auto tokens, ParsePointer(pointer));
  if (tokens.empty()) return &doc;
  KISO_ASSIGN_OR_RETURN(json::value * parent, Parent(doc, tokens, pointer));
  if (auto* obj = parent->if_object()) {
    auto it = obj->find(tokens.back());
    if (it == obj->end())
      return MakeStatus(Code::kInvalidArgument, "doc is missing path: {:?}", pointer);
    return &it->value();
  }
  if (auto* arr = parent->if_array()) {
    KISO_ASSIGN_OR_RETURN(size_t index, ArrayIndex(tokens.back(), arr->size(), false));
    return &(*arr)[index];
  }
  return MakeStatus(Code::kInvalidArgument, "doc is missing path: {:?}", pointer);
}

Status Add(json::value& doc, std::string_view pointer, json::value value) {
  KISO_ASSIGN_OR_RETURN(auto tokens, ParsePointer(pointer));
  if (tokens.empty()) {
    doc = std::move(value);
    return Status::Ok();
  }
  KISO_ASSIGN_OR_RETURN(json::value * parent, Parent(doc, tokens, pointer));
  if (auto* obj = parent->if_object()) {
    (*obj)[tokens.back()] = std::move(value);
    return Status::Ok();
  }
  if (auto* arr = parent->if_array()) {
    KISO_ASSIGN_OR_RETURN(size_t index, ArrayIndex(tokens.back(), arr->size(), true));
    arr->insert(arr->begin() + static_cast<std::ptrdiff_t>(index), std::move(value));
    return Status::Ok();
  }
  return MakeStatus(Code::kInvalidArgument, "doc is missing path: {:?}", pointer);
}

Result<json::value> Remove(json::value& doc, std::string_view pointer) {
  KISO_ASSIGN_OR_RETURN(auto tokens, ParsePointer(pointer));
  if (tokens.empty()) return MakeStatus(Code::kInvalidArgument, "cannot remove the whole document");
  KISO_ASSIGN_OR_RETURN(json::value * parent, Parent(doc, tokens, pointer));
  if (auto* obj = parent->if_object()) {
    auto it = obj->find(tokens.back());
    if (it == obj->end()) {
      return MakeStatus(Code::kInvalidArgument,
                        "Unable to remove nonexistent key: {}: missing value", tokens.back());
    }
    json::value removed = std::move(it->value());
    obj->erase(it);
    return removed;
  }
  if (auto* arr = parent->if_array()) {
    KISO_ASSIGN_OR_RETURN(size_t index, ArrayIndex(tokens.back(), arr->size(), false));
    json::value removed = std::move((*arr)[index]);
    arr->erase(arr->begin() + static_cast<std::ptrdiff_t>(index));
    return removed;
  }
  return MakeStatus(Code::kInvalidArgument, "doc is missing path: {:?}", pointer);
}

std::string_view StringField(const json::object& op, std::string_view name) {
  const auto* v = op.if_contains(name);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

}  // namespace

Result<json::value> ApplyJsonPatch(const json::value& doc, const json::value& patch) {
  if (!patch.is_array())
    return MakeStatus(Code::kInvalidArgument, "json patch must be an array of operations");
  if (patch.get_array().size() > kMaxJsonPatchOperations) {
    return MakeStatus(Code::kInvalidArgument,
                      "The allowed maximum operations in a JSON patch is {}, got {}",
                      kMaxJsonPatchOperations, patch.get_array().size());
  }
  json::value out = doc;
  size_t copied = 0;  // Bytes duplicated by copy operations (upstream's AccumulatedCopySizeLimit).
  for (const auto& raw : patch.get_array()) {
    if (!raw.is_object())
      return MakeStatus(Code::kInvalidArgument, "json patch operation must be an object");
    const auto& op = raw.get_object();
    std::string_view name = StringField(op, "op");
    std::string_view path = StringField(op, "path");
    if (!op.contains("path"))
      return MakeStatus(Code::kInvalidArgument, "json patch operation {:?} has no path", name);
    const json::value* value = op.if_contains("value");
    if (name == "add" || name == "replace" || name == "test") {
      if (!value)
        return MakeStatus(Code::kInvalidArgument, "json patch {} operation has no value", name);
    }
    if (name == "add") {
      KISO_RETURN_IF_ERROR(Add(out, path, *value));
    } else if (name == "remove") {
      KISO_ASSIGN_OR_RETURN(auto removed, Remove(out, path));
      (void)removed;
    } else if (name == "replace") {
      KISO_ASSIGN_OR_RETURN(auto removed, Remove(out, path));
      (void)removed;
      KISO_RETURN_IF_ERROR(Add(out, path, *value));
    } else if (name == "move" || name == "copy") {
      std::string_view from = StringField(op, "from");
      if (name == "copy") {
        KISO_ASSIGN_OR_RETURN(json::value * source, Find(out, from));
        copied += SerializedSize(*source, kMaxDocumentBytes + 1);
        if (copied > kMaxDocumentBytes) {
          return MakeStatus(Code::kResourceExhausted,
                            "Unable to apply JSON patch: copy operations would duplicate more "
                            "than the limit of {} bytes",
                            kMaxDocumentBytes);
        }
        KISO_RETURN_IF_ERROR(Add(out, path, json::value(*source)));
      } else {
        KISO_ASSIGN_OR_RETURN(auto moved, Remove(out, from));
        KISO_RETURN_IF_ERROR(Add(out, path, std::move(moved)));
      }
    } else if (name == "test") {
      KISO_ASSIGN_OR_RETURN(json::value * current, Find(out, path));
      if (*current != *value)
        return MakeStatus(Code::kInvalidArgument, "testing value {} failed", path);
    } else {
      return MakeStatus(Code::kInvalidArgument, "Unexpected kind: {}", name);
    }
  }
  return out;
}

json::value ApplyMergePatch(const json::value& doc, const json::value& patch) {
  if (!patch.is_object()) return patch;
  json::value out = doc.is_object() ? doc : json::value(json::object());
  auto& obj = out.get_object();
  for (const auto& [key, value] : patch.get_object()) {
    if (value.is_null()) {
      obj.erase(key);
    } else {
      const json::value* current = obj.if_contains(key);
      obj[key] = ApplyMergePatch(current ? *current : json::value(), value);
    }
  }
  return out;
}

// ---- Strategic merge patch ----

namespace {

// Merge keys relative to a PodSpec (notes/smp-keys.txt, core/v1 PodSpec and Container).
ListStrategy PodSpecList(std::string_view rel) {
  using T = ListStrategy::Type;
  static const std::array<std::pair<std::string_view, std::string_view>, 9> kPodSpec = {{
      {"containers", "name"},
      {"initContainers", "name"},
      {"ephemeralContainers", "name"},
      {"volumes", "name"},
      {"imagePullSecrets", "name"},
      {"hostAliases", "ip"},
      {"topologySpreadConstraints", "topologyKey"},
      {"schedulingGates", "name"},
      {"resourceClaims", "name"},
  }};
  for (const auto& [field, key] : kPodSpec) {
    if (rel == field) return {T::kMergeByKey, std::string(key)};
  }
  static const std::array<std::pair<std::string_view, std::string_view>, 4> kContainer = {{
      {"ports", "containerPort"},
      {"env", "name"},
      {"volumeMounts", "mountPath"},
      {"volumeDevices", "devicePath"},
  }};
  for (std::string_view list : {"containers.", "initContainers.", "ephemeralContainers."}) {
    if (!rel.starts_with(list)) continue;
    std::string_view field = rel.substr(list.size());
    for (const auto& [name, key] : kContainer) {
      if (field == name) return {T::kMergeByKey, std::string(key)};
    }
  }
  return {};
}

}  // namespace

ListStrategy ListStrategyFor(std::string_view kind, std::string_view path) {
  using T = ListStrategy::Type;
  if (path == "metadata.ownerReferences") return {T::kMergeByKey, "uid"};
  if (path == "metadata.finalizers") return {T::kMergePrimitives, ""};
  if (path == "status.conditions") return {T::kMergeByKey, "type"};
  if (kind == "Pod") {
    if (path.starts_with("spec.")) return PodSpecList(path.substr(5));
    if (path == "status.podIPs" || path == "status.hostIPs") return {T::kMergeByKey, "ip"};
    if (path == "status.containerStatuses.volumeMounts") return {T::kMergeByKey, "mountPath"};
    return {};
  }
  // Kinds that embed a PodTemplateSpec at spec.template (and Job templates).
  static constexpr std::string_view kTemplate = "spec.template.spec.";
  if (path.starts_with(kTemplate)) return PodSpecList(path.substr(kTemplate.size()));
  if (kind == "Service" && path == "spec.ports") return {T::kMergeByKey, "port"};
  if (kind == "ServiceAccount" && path == "secrets") return {T::kMergeByKey, "name"};
  if (kind == "Node") {
    if (path == "spec.podCIDRs") return {T::kMergePrimitives, ""};
    if (path == "status.addresses") return {T::kMergeByKey, "type"};
  }
  return {};
}

namespace {

constexpr std::string_view kPatchDirective = "$patch";
constexpr std::string_view kRetainKeys = "$retainKeys";
constexpr std::string_view kSetElementOrder = "$setElementOrder/";
constexpr std::string_view kDeleteFromPrimitiveList = "$deleteFromPrimitiveList/";

std::string Join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

class StrategicMerger {
 public:
  explicit StrategicMerger(std::string_view kind) : kind_(kind) {}

  // Merges `patch` (an object) into `doc`. Returns false in *keep when the map is deleted.
  Status MergeMap(json::object& doc, const json::object& patch, const std::string& path) {
    if (const auto* directive = patch.if_contains(kPatchDirective)) {
      std::string_view d = directive->is_string() ? std::string_view(directive->get_string()) : "";
      if (d == "replace") {
        doc = patch;
        doc.erase(kPatchDirective);
        return Status::Ok();
      }
      if (d == "delete") {
        doc.clear();
        deleted_ = true;
        return Status::Ok();
      }
      if (d != "merge") return MakeStatus(Code::kInvalidArgument, "Unknown patch type: {}", d);
    }
    for (const auto& [raw_key, value] : patch) {
      std::string_view key = raw_key;
      if (key == kPatchDirective || key == kRetainKeys || key.starts_with(kSetElementOrder))
        continue;
      if (key.starts_with(kDeleteFromPrimitiveList)) {
        std::string field(key.substr(kDeleteFromPrimitiveList.size()));
        auto* list = doc.if_contains(field);
        if (list && list->is_array() && value.is_array()) {
          std::unordered_set<std::string> gone;
          for (const auto& v : value.get_array()) gone.insert(json::serialize(v));
          auto& arr = list->get_array();
          arr.erase(std::remove_if(
                        arr.begin(), arr.end(),
                        [&](const json::value& v) { return gone.contains(json::serialize(v)); }),
                    arr.end());
        }
        continue;
      }
      std::string child = Join(path, key);
      if (value.is_null()) {
        doc.erase(key);
        continue;
      }
      json::value* current = doc.if_contains(key);
      if (value.is_object() && current && current->is_object()) {
        deleted_ = false;
        KISO_RETURN_IF_ERROR(MergeMap(current->get_object(), value.get_object(), child));
        if (deleted_) doc.erase(key);
        deleted_ = false;
      } else if (value.is_array()) {
        json::array merged;
        KISO_RETURN_IF_ERROR(
            MergeList(current && current->is_array() ? current->get_array() : json::array(),
                      value.get_array(), child, merged));
        doc[key] = std::move(merged);
      } else if (value.is_object()) {
        // New map: drop directives from the inserted value.
        json::object fresh;
        deleted_ = false;
        KISO_RETURN_IF_ERROR(MergeMap(fresh, value.get_object(), child));
        if (!deleted_) doc[key] = std::move(fresh);
        deleted_ = false;
      } else {
        doc[key] = value;
      }
    }
    if (const auto* retain = patch.if_contains(kRetainKeys); retain && retain->is_array()) {
      std::unordered_set<std::string_view> keep;
      for (const auto& r : retain->get_array()) {
        if (r.is_string()) keep.insert(r.get_string());
      }
      std::vector<std::string> erase;
      for (const auto& [k, v] : doc) {
        (void)v;
        if (!keep.contains(k)) erase.emplace_back(k);
      }
      for (const auto& k : erase) doc.erase(k);
    }
    return Status::Ok();
  }

  Status MergeList(const json::array& doc, const json::array& patch, const std::string& path,
                   json::array& out) {
    ListStrategy strategy = ListStrategyFor(kind_, path);
    if (strategy.type == ListStrategy::Type::kMergePrimitives) {
      out = doc;
      std::unordered_set<std::string> present;
      for (const auto& v : out) present.insert(json::serialize(v));
      for (const auto& v : patch) {
        if (present.insert(json::serialize(v)).second) out.push_back(v);
      }
      return Status::Ok();
    }
    if (strategy.type == ListStrategy::Type::kReplace) {
      // Replace, dropping a list-level {"$patch": …} marker if present.
      for (const auto& v : patch) {
        if (v.is_object() && v.get_object().contains(kPatchDirective) && v.get_object().size() == 1)
          continue;
        out.push_back(v);
      }
      return Status::Ok();
    }
    // Merge by key. A {"$patch":"replace"} element replaces the whole list.
    bool replace = false;
    for (const auto& v : patch) {
      if (const auto* o = v.if_object()) {
        const auto* d = o->if_contains(kPatchDirective);
        replace |= d && d->is_string() && d->get_string() == "replace";
      }
    }
    // The merged list as slots (a deleted element leaves an empty one), with
    // an index from each merge key's value to its slot: linear, not a search
    // of the list per patch element.
    std::vector<std::optional<json::value>> slots;
    std::unordered_map<std::string, size_t> by_key;
    auto index = [&](const json::value& e) {
      const auto* o = e.if_object();
      const auto* k = o ? o->if_contains(strategy.key) : nullptr;
      if (k) by_key.emplace(json::serialize(*k), slots.size());
    };
    if (!replace) {
      for (const auto& e : doc) {
        index(e);
        slots.emplace_back(e);
      }
    }
    for (const auto& v : patch) {
      const auto* element = v.if_object();
      if (!element) {
        return MakeStatus(Code::kInvalidArgument,
                          "{}: list elements must be objects with merge key {:?}", path,
                          strategy.key);
      }
      const auto* directive = element->if_contains(kPatchDirective);
      std::string_view d =
          directive && directive->is_string() ? std::string_view(directive->get_string()) : "";
      if (d == "replace" && element->size() == 1) continue;
      const auto* key = element->if_contains(strategy.key);
      if (!key) {
        return MakeStatus(Code::kInvalidArgument, "map: {} does not contain declared merge key: {}",
                          json::serialize(v), strategy.key);
      }
      std::string key_text = json::serialize(*key);
      auto match = by_key.find(key_text);
      if (d == "delete") {
        if (match != by_key.end()) {
          slots[match->second].reset();
          by_key.erase(match);
        }
        continue;
      }
      if (match != by_key.end() && slots[match->second]->is_object()) {
        KISO_RETURN_IF_ERROR(MergeMap(slots[match->second]->get_object(), *element, path));
      } else {
        json::object fresh;
        KISO_RETURN_IF_ERROR(MergeMap(fresh, *element, path));
        by_key[key_text] = slots.size();
        slots.emplace_back(std::move(fresh));
      }
    }
    for (auto& slot : slots) {
      if (slot) out.push_back(std::move(*slot));
    }
    return Status::Ok();
  }

 private:
  std::string_view kind_;
  bool deleted_ = false;
};

}  // namespace

Result<json::value> ApplyStrategicMergePatch(const json::value& doc, const json::value& patch,
                                             std::string_view kind) {
  if (!patch.is_object())
    return MakeStatus(Code::kInvalidArgument, "strategic merge patch must be a JSON object");
  json::value out = doc.is_object() ? doc : json::value(json::object());
  StrategicMerger merger(kind);
  KISO_RETURN_IF_ERROR(merger.MergeMap(out.get_object(), patch.get_object(), ""));
  return out;
}

}  // namespace kiso::api
