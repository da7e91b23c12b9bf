#include "api/storage.h"

#include "api/object.h"

namespace kiso::api {

std::string ClaimClass(const boost::json::value& claim) {
  if (const auto* c = Find(claim, {"spec", "storageClassName"}); c && c->is_string())
    return std::string(c->get_string());
  return std::string(
      GetString(claim, {"metadata", "annotations", "volume.beta.kubernetes.io/storage-class"}));
}

}  // namespace kiso::api
