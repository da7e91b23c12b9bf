#include "client/api_servers.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::client {

namespace json = boost::json;

ApiServerWatch::ApiServerWatch(Client* client, OnChange on_change)
    : on_change_(std::move(on_change)) {
  slices_ = std::make_unique<Informer>(
      client, api::FindResource("discovery.k8s.io", "v1", "endpointslices"),
      [this](const json::value*, const json::value& slice, bool deleted) {
        if (deleted || api::GetString(slice, {"metadata", "namespace"}) != "default") return;
        auto urls = UrlsOf(slice);
        if (urls.empty() || urls == last_) return;
        last_ = urls;
        on_change_(urls);
      });
  slices_->SetFieldSelector("metadata.name=kubernetes");
}

ApiServerWatch::~ApiServerWatch() { Stop(); }

void ApiServerWatch::Start() { slices_->Start(); }
void ApiServerWatch::Stop() { slices_->Stop(); }

std::vector<std::string> ApiServerWatch::UrlsOf(const json::value& slice) {
  int64_t port = 0;
  if (const auto* ports = api::Find(slice, {"ports"}); ports && ports->is_array()) {
    for (const auto& p : ports->get_array()) {
      const auto* n = api::Find(p, {"port"});
      if (n && n->is_int64() && (port == 0 || api::GetString(p, {"name"}) == "https"))
        port = n->get_int64();
    }
  }
  std::vector<std::string> urls;
  const auto* endpoints = api::Find(slice, {"endpoints"});
  if (port <= 0 || port > 65535 || !endpoints || !endpoints->is_array()) return urls;
  for (const auto& e : endpoints->get_array()) {
    const auto* ready = api::Find(e, {"conditions", "ready"});
    if (ready && ready->is_bool() && !ready->get_bool()) continue;
    const auto* addresses = api::Find(e, {"addresses"});
    if (!addresses || !addresses->is_array()) continue;
    for (const auto& a : addresses->get_array()) {
      if (!a.is_string() || a.get_string().empty()) continue;
      std::string_view ip = a.get_string();
      urls.push_back(ip.find(':') != std::string_view::npos
                         ? fmt::format("https://[{}]:{}", ip, port)
                         : fmt::format("https://{}:{}", ip, port));
    }
  }
  std::sort(urls.begin(), urls.end());
  urls.erase(std::unique(urls.begin(), urls.end()), urls.end());
  return urls;
}

}  // namespace kiso::client
