#include "client/slice_index.h"

#include <fmt/format.h>

#include "api/object.h"

namespace kiso::client {

namespace {

std::string ServiceOf(const boost::json::value& slice) {
  std::string_view svc =
      api::GetString(slice, {"metadata", "labels", "kubernetes.io/service-name"});
  if (svc.empty()) return "";
  return fmt::format("{}/{}", api::GetString(slice, {"metadata", "namespace"}), svc);
}

}  // namespace

std::vector<std::string> SliceIndex::Observe(const boost::json::value* old,
                                             const boost::json::value& slice, bool deleted) {
  std::string name(api::GetString(slice, {"metadata", "name"}));
  std::string before = old ? ServiceOf(*old) : "", now = ServiceOf(slice);
  std::vector<std::string> concerned;
  std::lock_guard lock(mu_);
  if (!before.empty() && before != now) {
    slices_[before].erase(name);
    if (slices_[before].empty()) slices_.erase(before);
    concerned.push_back(before);
  }
  if (!now.empty()) {
    if (deleted) {
      slices_[now].erase(name);
      if (slices_[now].empty()) slices_.erase(now);
    } else {
      slices_[now].insert(name);
    }
    concerned.push_back(now);
  }
  return concerned;
}

std::set<std::string> SliceIndex::Of(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = slices_.find(key);
  return it == slices_.end() ? std::set<std::string>() : it->second;
}

}  // namespace kiso::client
