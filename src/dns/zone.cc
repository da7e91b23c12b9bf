#include "dns/zone.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <mutex>

#include "api/object.h"
#include "client/slice_index.h"
#include "common/cidr.h"

namespace kiso::dns {

namespace json = boost::json;

namespace {

constexpr uint16_t kA = 1, kCname = 5, kPtr = 12, kTxt = 16, kSrv = 33, kAny = 255;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Dashed(std::string ip) {
  std::replace(ip.begin(), ip.end(), '.', '-');
  return ip;
}

}  // namespace

std::string Fqdn(std::string_view name) {
  std::string out = Lower(name);
  if (out.empty() || out.back() != '.') out += '.';
  return out;
}

std::string ReverseName(std::string_view ip) {
  auto a = ParseIpv4(ip);
  if (!a) return "";
  return fmt::format("{}.{}.{}.{}.in-addr.arpa.", *a & 0xff, (*a >> 8) & 0xff, (*a >> 16) & 0xff,
                     *a >> 24);
}

ClusterZone::ClusterZone(const std::string& domain) : domain_(Fqdn(domain)) {
  Index({{"dns-version." + domain_, kTxt, "\"1.1.0\""}}, 1);
}

std::vector<Record> ClusterZone::RecordsOf(const std::string& domain, const json::value& service,
                                           const std::vector<json::value>& slices) {
  std::vector<Record> out;
  const std::string zone = Fqdn(domain);
  std::string ns = Lower(api::GetString(service, {"metadata", "namespace"}));
  std::string svc = Lower(api::GetString(service, {"metadata", "name"}));
  const std::string base = fmt::format("{}.{}.svc.{}", svc, ns, zone);
  std::string_view type = api::GetString(service, {"spec", "type"});
  if (type == "ExternalName") {
    std::string_view target = api::GetString(service, {"spec", "externalName"});
    if (!target.empty()) out.push_back({base, kCname, Fqdn(target)});
    return out;
  }
  std::string cluster_ip(api::GetString(service, {"spec", "clusterIP"}));
  const bool headless = cluster_ip == "None" || cluster_ip.empty();
  const auto* publish = api::Find(service, {"spec", "publishNotReadyAddresses"});
  const bool all = publish && publish->is_bool() && publish->get_bool();
  const auto* ports = api::Find(service, {"spec", "ports"});
  const json::array none;
  const json::array& port_list = ports && ports->is_array() ? ports->get_array() : none;
  auto srv_name = [&](const json::value& port) {
    std::string proto = Lower(api::GetString(port, {"protocol"}));
    return fmt::format("_{}._{}.{}", Lower(api::GetString(port, {"name"})),
                       proto.empty() ? "tcp" : proto, base);
  };
  if (!headless) {
    out.push_back({base, kA, cluster_ip});
    for (const auto& p : port_list) {
      if (api::GetString(p, {"name"}).empty()) continue;
      const auto* n = api::Find(p, {"port"});
      out.push_back({srv_name(p), kSrv,
                     fmt::format("0 100 {} {}", n && n->is_int64() ? n->get_int64() : 0, base)});
    }
    std::string ptr = ReverseName(cluster_ip);
    if (!ptr.empty()) out.push_back({ptr, kPtr, base});
    return out;
  }
  // Headless: the ready endpoints themselves.
  std::set<std::string> seen;
  for (const auto& slice : slices) {
    const auto& slice_ports = api::GetArray(slice, {"ports"});
    for (const auto& e : client::EndpointsOf(slice)) {
      if ((!all && !e.ready) || !ParseIpv4(e.ip) || !seen.insert(e.ip).second) continue;
      std::string host = Lower(e.hostname);
      const bool named = !host.empty();
      std::string own = fmt::format("{}.{}", named ? host : Dashed(e.ip), base);
      out.push_back({base, kA, e.ip});
      out.push_back({own, kA, e.ip});
      if (named) out.push_back({ReverseName(e.ip), kPtr, own});
      for (const auto& sp : slice_ports) {
        if (api::GetString(sp, {"name"}).empty()) continue;
        const auto* n = api::Find(sp, {"port"});
        out.push_back({srv_name(sp), kSrv,
                       fmt::format("0 100 {} {}", n && n->is_int64() ? n->get_int64() : 0, own)});
      }
    }
  }
  return out;
}

void ClusterZone::Index(const std::vector<Record>& records, int delta) {
  for (const auto& r : records) {
    auto& list = by_name_[r.name];
    if (delta > 0) {
      if (std::find(list.begin(), list.end(), r) == list.end()) list.push_back(r);
    } else {
      list.erase(std::remove(list.begin(), list.end(), r), list.end());
      if (list.empty()) by_name_.erase(r.name);
    }
    // The owner and its ancestors inside the zone exist (empty non-terminals).
    if (!r.name.ends_with(domain_)) continue;
    std::string_view n = r.name;
    while (n.size() > domain_.size()) {
      if ((names_[std::string(n)] += delta) <= 0) names_.erase(std::string(n));
      n.remove_prefix(n.find('.') + 1);
    }
  }
}

void ClusterZone::Update(const std::string& key, const json::value* service,
                         const std::vector<json::value>& slices) {
  std::vector<Record> next;
  if (service) next = RecordsOf(domain_, *service, slices);
  std::unique_lock lock(mu_);
  auto it = by_service_.find(key);
  if (it != by_service_.end()) {
    if (it->second == next) return;
    Index(it->second, -1);
  } else if (next.empty()) {
    return;
  }
  Index(next, 1);
  if (next.empty()) {
    by_service_.erase(key);
  } else {
    by_service_[key] = std::move(next);
  }
  ++generation_;
}

uint64_t ClusterZone::generation() const {
  std::shared_lock lock(mu_);
  return generation_;
}

Answer ClusterZone::Lookup(std::string_view name, uint16_t type, std::vector<Record>* out) const {
  const std::string q = Fqdn(name);
  const bool in_zone = q == domain_ || q.ends_with("." + domain_);
  if (!in_zone && !q.ends_with(".in-addr.arpa.")) return Answer::kNotOurs;
  // <a-b-c-d>.<ns>.pod.<zone>: the address the name spells.
  if (in_zone && q.size() > domain_.size()) {
    std::string_view rest(q);
    rest.remove_suffix(domain_.size() + 1);  // "a-b-c-d.ns.pod"
    size_t first = rest.find('.'), last = rest.rfind('.');
    if (first != std::string_view::npos && first != last && rest.substr(last + 1) == "pod" &&
        rest.substr(first + 1, last - first - 1).find('.') == std::string_view::npos) {
      std::string ip(rest.substr(0, first));
      std::replace(ip.begin(), ip.end(), '-', '.');
      if (ParseIpv4(ip)) {
        if (type != kA && type != kAny) return Answer::kNoData;
        out->push_back({q, kA, ip});
        return Answer::kFound;
      }
    }
  }
  std::shared_lock lock(mu_);
  auto it = by_name_.find(q);
  if (it != by_name_.end()) {
    for (const auto& r : it->second) {
      // A CNAME answers every type (the resolver follows it).
      if (type == kAny || r.type == type || r.type == kCname) out->push_back(r);
    }
    return out->empty() ? Answer::kNoData : Answer::kFound;
  }
  if (q.ends_with(".in-addr.arpa.")) return Answer::kNotOurs;  // Not a Service's: forwarded.
  if (q == domain_ || names_.count(q)) return Answer::kNoData;
  // The fixed structure of the zone exists whatever is in it.
  if (q == "svc." + domain_ || q == "pod." + domain_) return Answer::kNoData;
  return Answer::kNxDomain;
}

}  // namespace kiso::dns
