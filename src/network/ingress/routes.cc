#include "network/ingress/routes.h"

#include <algorithm>
#include <cctype>

namespace kiso::network::ingress {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A Host header without its port ("[::1]:80" keeps its brackets' content).
std::string_view StripPort(std::string_view host) {
  if (host.starts_with('[')) {
    size_t end = host.find(']');
    return end == std::string_view::npos ? host : host.substr(1, end - 1);
  }
  size_t colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

}  // namespace

bool PathMatches(std::string_view rule, PathType type, std::string_view path) {
  if (type == PathType::kExact) return path == rule;
  while (rule.size() > 1 && rule.ends_with('/')) rule.remove_suffix(1);
  if (rule == "/" || rule.empty()) return true;
  if (!path.starts_with(rule)) return false;
  return path.size() == rule.size() || path[rule.size()] == '/';
}

bool HostMatches(std::string_view pattern, std::string_view host) {
  if (pattern.empty()) return true;
  if (!pattern.starts_with("*.")) return pattern == host;
  std::string_view suffix = pattern.substr(1);  // ".example.com"
  if (host.size() <= suffix.size() || !host.ends_with(suffix)) return false;
  std::string_view label = host.substr(0, host.size() - suffix.size());
  return label.find('.') == std::string_view::npos;
}

void RouteTable::Add(Rule rule) {
  rule.host = Lower(rule.host);
  rules_.push_back(std::move(rule));
}

void RouteTable::SetDefault(std::shared_ptr<const Backend> backend) {
  if (!default_) default_ = std::move(backend);  // The oldest Ingress's, as for rules.
}

void RouteTable::AddCertificate(Certificate cert) {
  for (auto& h : cert.hosts) h = Lower(h);
  certificates_.push_back(std::move(cert));
}

void RouteTable::Seal() {
  exact_.clear();
  wildcard_.clear();
  any_host_.clear();
  for (const Rule& r : rules_) {
    if (r.host.empty()) {
      any_host_.push_back(&r);
    } else if (r.host.starts_with("*.")) {
      wildcard_[r.host.substr(1)].push_back(&r);
    } else {
      exact_[r.host].push_back(&r);
    }
  }
  // Longest path first, Exact before Prefix at equal length; stable, so the
  // first added wins among equals.
  auto order = [](std::vector<const Rule*>& rules) {
    std::stable_sort(rules.begin(), rules.end(), [](const Rule* a, const Rule* b) {
      if (a->path.size() != b->path.size()) return a->path.size() > b->path.size();
      return a->type == PathType::kExact && b->type != PathType::kExact;
    });
  };
  for (auto& [h, rules] : exact_) order(rules);
  for (auto& [h, rules] : wildcard_) order(rules);
  order(any_host_);
}

const Backend* RouteTable::MatchIn(const std::vector<const Rule*>& rules,
                                   std::string_view path) const {
  for (const Rule* r : rules) {
    if (PathMatches(r->path, r->type, path)) return r->backend.get();
  }
  return nullptr;
}

const Backend* RouteTable::Match(std::string_view host_header, std::string_view target) const {
  std::string host = Lower(StripPort(host_header));
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  if (path.empty()) path = "/";
  if (auto it = exact_.find(host); it != exact_.end()) {
    if (const Backend* b = MatchIn(it->second, path)) return b;
  }
  if (size_t dot = host.find('.'); dot != std::string::npos && dot > 0) {
    if (auto it = wildcard_.find(std::string_view(host).substr(dot)); it != wildcard_.end()) {
      if (const Backend* b = MatchIn(it->second, path)) return b;
    }
  }
  if (const Backend* b = MatchIn(any_host_, path)) return b;
  return default_.get();
}

const Certificate* RouteTable::CertificateFor(std::string_view server_name) const {
  std::string name = Lower(server_name);
  const Certificate* wildcard = nullptr;
  for (const auto& c : certificates_) {
    for (const auto& h : c.hosts) {
      if (h == name) return &c;
      if (!wildcard && h.starts_with("*.") && HostMatches(h, name)) wildcard = &c;
    }
  }
  return wildcard;
}

}  // namespace kiso::network::ingress
