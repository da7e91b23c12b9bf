// The selectors of a LIST or WATCH request, parsed once and applied to cached objects.
#pragma once

#include <optional>

#include "api/errors.h"
#include "api/selector.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

class ListFilter {
 public:
  // BadRequest for a malformed selector or a field the kind does not support.
  static api::ApiOr<ListFilter> FromRequest(const Target& t, const Request& req);
  bool Matches(const CachedObject& obj) const;
  // No selector: every object under `prefix` matches.
  bool SelectsAll() const { return labels_.empty() && fields_.empty(); }
  // The store prefix to scan: the type's, narrowed by namespace (and by
  // metadata.name when the field selector pins it).
  std::string prefix;

 private:
  api::LabelSelector labels_;
  api::FieldSelector fields_;
};

}  // namespace kiso::apiserver
