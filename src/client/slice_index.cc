#include "client/slice_index.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::client {

namespace {

std::string ServiceOf(const boost::json::value& slice) {
  std::string_view svc =
      api::GetString(slice, {"metadata", "labels", "kubernetes.io/service-name"});
  if (svc.empty()) return "";
  return fmt::format("{}/{}", api::GetString(slice, {"metadata", "namespace"}), svc);
}

bool Condition(const boost::json::value& endpoint, std::string_view name, bool absent) {
  const auto* v = api::Find(endpoint, {"conditions", name});
  return v && v->is_bool() ? v->get_bool() : absent;
}

}  // namespace

std::vector<SliceEndpoint> EndpointsOf(const boost::json::value& slice) {
  std::vector<SliceEndpoint> out;
  if (api::GetString(slice, {"addressType"}) != "IPv4") return out;
  boost::json::object weights;
  std::string_view w = api::GetString(slice, {"metadata", "annotations", "kiso.dev/weights"});
  if (!w.empty()) {
    boost::system::error_code ec;
    auto parsed = boost::json::parse(w, ec);
    if (!ec && parsed.is_object()) weights = std::move(parsed.get_object());
  }
  for (const auto& e : api::GetArray(slice, {"endpoints"})) {
    const auto& addresses = api::GetArray(e, {"addresses"});
    if (addresses.empty() || !addresses[0].is_string()) continue;
    SliceEndpoint ep;
    ep.ip = std::string(addresses[0].get_string());
    ep.ready = Condition(e, "ready", true);
    ep.serving = Condition(e, "serving", ep.ready);
    ep.terminating = Condition(e, "terminating", false);
    ep.node_name = std::string(api::GetString(e, {"nodeName"}));
    ep.hostname = std::string(api::GetString(e, {"hostname"}));
    if (const auto* wt = weights.if_contains(ep.ip); wt && wt->is_int64() && wt->get_int64() > 0)
      ep.weight = wt->get_int64();
    out.push_back(std::move(ep));
  }
  return out;
}

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
