#include "scheduler/volume_binding.h"

#include <algorithm>
#include <cmath>

#include "api/object.h"
#include "api/selector.h"
#include "api/storage.h"
#include "api/validation.h"

namespace kiso::scheduler {

namespace json = boost::json;

int64_t StorageBytes(const json::value* quantity) {
  long double milli = 0;
  if (!quantity || !quantity->is_string() ||
      !api::ParseQuantityMilli(quantity->get_string(), &milli))
    return 0;
  long double bytes = std::ceil(milli / 1000);
  return bytes >= 9.2e18L ? INT64_MAX : static_cast<int64_t>(bytes);
}

std::vector<SelectorTerm> VolumeNodeAffinity(const json::value& volume) {
  return ParseSelectorTerms(api::Find(volume, {"spec", "nodeAffinity", "required"}));
}

bool VolumeSatisfies(const json::value& volume, const json::value& claim, const NodeInfo* node) {
  if (!api::GetString(volume, {"metadata", "deletionTimestamp"}).empty()) return false;
  if (const auto* ref = api::Find(volume, {"spec", "claimRef"}); ref && ref->is_object()) {
    // Bound, or kept for a claim (pre-bound): only that claim may have it.
    bool same =
        api::GetString(*ref, {"name"}) == api::GetString(claim, {"metadata", "name"}) &&
        api::GetString(*ref, {"namespace"}) == api::GetString(claim, {"metadata", "namespace"});
    std::string_view uid = api::GetString(*ref, {"uid"});
    if (!same || (!uid.empty() && uid != api::GetString(claim, {"metadata", "uid"}))) return false;
  } else {
    std::string_view phase = api::GetString(volume, {"status", "phase"});
    if (phase != "Available" && phase != "Pending" && !phase.empty()) return false;
  }
  if (std::string_view(api::GetString(volume, {"spec", "storageClassName"})) !=
      api::ClaimClass(claim))
    return false;
  auto mode = [](const json::value& o) {
    std::string_view m = api::GetString(o, {"spec", "volumeMode"});
    return m.empty() ? std::string_view("Filesystem") : m;
  };
  if (mode(volume) != mode(claim)) return false;
  const auto& offered = api::GetArray(volume, {"spec", "accessModes"});
  for (const auto& m : api::GetArray(claim, {"spec", "accessModes"})) {
    if (std::find(offered.begin(), offered.end(), m) == offered.end()) return false;
  }
  if (StorageBytes(api::Find(volume, {"spec", "capacity", "storage"})) <
      StorageBytes(api::Find(claim, {"spec", "resources", "requests", "storage"})))
    return false;
  if (const auto* sel = api::Find(claim, {"spec", "selector"}); sel && sel->is_object()) {
    auto selector = api::LabelSelector::FromObject(*sel);
    if (!selector.ok() || !selector->Matches(api::GetLabels(volume))) return false;
  }
  if (node) {
    auto terms = VolumeNodeAffinity(volume);
    if (!terms.empty() && !MatchesSelectorTerms(terms, *node)) return false;
  }
  return true;
}

const json::value* BestVolumeFor(const json::value& claim, const std::vector<json::value>& volumes,
                                 const NodeInfo* node) {
  const json::value* best = nullptr;
  int64_t best_size = 0;
  for (const auto& v : volumes) {
    if (!VolumeSatisfies(v, claim, node)) continue;
    if (api::Find(v, {"spec", "claimRef"})) return &v;  // Kept for this claim.
    int64_t size = StorageBytes(api::Find(v, {"spec", "capacity", "storage"}));
    if (!best || size < best_size) {
      best = &v;
      best_size = size;
    }
  }
  return best;
}

}  // namespace kiso::scheduler
