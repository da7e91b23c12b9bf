#include "apiserver/verbs/list_filter.h"

#include <fmt/format.h>

#include <algorithm>

#include "apiserver/verbs/fields.h"

namespace kiso::apiserver {

api::ApiOr<ListFilter> ListFilter::FromRequest(const Target& t, const Request& req) {
  ListFilter f;
  f.prefix = t.type->StorePrefix();
  if (t.type->namespaced && !t.ns.empty()) f.prefix += t.ns + "/";
  if (auto text = req.Query("labelSelector")) {
    auto parsed = api::LabelSelector::Parse(*text);
    if (!parsed.ok()) return api::BadRequest(parsed.status().message());
    f.labels_ = std::move(*parsed);
  }
  if (auto text = req.Query("fieldSelector")) {
    auto parsed = api::FieldSelector::Parse(*text);
    if (!parsed.ok()) return api::BadRequest(parsed.status().message());
    const auto& supported = FieldSelectorFields(t.type->kind);
    for (const auto& term : parsed->terms()) {
      if (std::find(supported.begin(), supported.end(), term.field) == supported.end()) {
        return api::BadRequest(fmt::format("field label not supported: {}", term.field));
      }
    }
    f.fields_ = std::move(*parsed);
  }
  return f;
}

bool ListFilter::Matches(const CachedObject& obj) const {
  if (!labels_.empty() && !labels_.Matches(obj.labels)) return false;
  if (!fields_.empty()) {
    return fields_.Matches([&](std::string_view field) {
      const std::string* value = obj.fields.Find(field);
      return value ? *value : std::string();
    });
  }
  return true;
}

}  // namespace kiso::apiserver
