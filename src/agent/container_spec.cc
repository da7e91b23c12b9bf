#include "agent/container_spec.h"

#include <openssl/evp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/atomic_writer.h"
#include "api/object.h"
#include "api/validation.h"
#include "common/base64.h"
#include "common/clock.h"
#include "common/file.h"
#include "runtime/oci_spec.h"

namespace kiso::agent {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

const api::ResourceType& ConfigMaps() { return *api::FindResource("", "v1", "configmaps"); }
const api::ResourceType& Secrets() { return *api::FindResource("", "v1", "secrets"); }

// The data of a ConfigMap or Secret (Secret values decoded).
Result<std::map<std::string, std::string>> SourceData(client::Client* client, bool secret,
                                                      const std::string& ns,
                                                      const std::string& name) {
  auto obj = client->Get(secret ? Secrets() : ConfigMaps(), ns, name);
  if (!obj.ok()) {
    return MakeStatus(obj.status().code(), "{} \"{}\" not found", secret ? "secret" : "configmap",
                      name);
  }
  std::map<std::string, std::string> out;
  if (const auto* data = api::Find(*obj, {"data"}); data && data->is_object()) {
    for (const auto& [k, v] : data->get_object()) {
      if (!v.is_string()) continue;
      out[k] = secret ? Base64Decode(v.get_string()).value_or("") : std::string(v.get_string());
    }
  }
  if (const auto* data = api::Find(*obj, {"binaryData"}); !secret && data && data->is_object()) {
    for (const auto& [k, v] : data->get_object()) {
      if (v.is_string()) out[k] = Base64Decode(v.get_string()).value_or("");
    }
  }
  return out;
}

// A Service's name as environment variables name it: "web-db" → "WEB_DB".
std::string EnvName(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The variables the kubelet gives a container for each Service it sees
// (docker links' form): NAME_SERVICE_HOST, NAME_SERVICE_PORT[_PORTNAME],
// NAME_PORT, NAME_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]. The services of the
// pod's namespace with enableServiceLinks (the default), and always the
// `kubernetes` Service of default (one of the pod's namespace goes first).
Result<std::vector<std::pair<std::string, std::string>>> ServiceEnv(client::Client* client,
                                                                    const json::value& pod) {
  const api::ResourceType& services = *api::FindResource("", "v1", "services");
  std::string ns(api::GetString(pod, {"metadata", "namespace"}));
  const json::value* links = api::Find(pod, {"spec", "enableServiceLinks"});
  bool enable_links = !links || !links->is_bool() || links->get_bool();
  std::map<std::string, json::value> chosen;  // By name: the order is the names'.
  auto take = [&](std::string_view from, bool only_kubernetes) -> Status {
    auto list = client->List(services, from);
    if (!list.ok()) return list.status().Annotate("list services for the environment");
    for (const auto& s : api::GetArray(*list, {"items"})) {
      std::string name(api::GetString(s, {"metadata", "name"}));
      std::string_view ip = api::GetString(s, {"spec", "clusterIP"});
      if (ip.empty() || ip == "None" || (only_kubernetes && name != "kubernetes")) continue;
      if (!chosen.contains(name)) chosen[name] = s;
    }
    return Status::Ok();
  };
  if (enable_links) KISO_RETURN_IF_ERROR(take(ns, false));
  if (ns != "default" || !enable_links) KISO_RETURN_IF_ERROR(take("default", true));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, s] : chosen) {
    std::string prefix = EnvName(name);
    std::string ip(api::GetString(s, {"spec", "clusterIP"}));
    const auto& ports = api::GetArray(s, {"spec", "ports"});
    if (ports.empty()) continue;
    auto port_of = [](const json::value& p) {
      const auto* v = api::Find(p, {"port"});
      return v && v->is_int64() ? std::to_string(v->get_int64()) : std::string("0");
    };
    out.emplace_back(prefix + "_SERVICE_HOST", ip);
    out.emplace_back(prefix + "_SERVICE_PORT", port_of(ports[0]));
    for (const auto& p : ports) {
      std::string_view port_name = api::GetString(p, {"name"});
      if (!port_name.empty())
        out.emplace_back(prefix + "_SERVICE_PORT_" + EnvName(port_name), port_of(p));
    }
    for (size_t i = 0; i < ports.size(); ++i) {
      std::string protocol(api::GetString(ports[i], {"protocol"}));
      if (protocol.empty()) protocol = "TCP";
      std::string lower = protocol;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string url = fmt::format("{}://{}:{}", lower, ip, port_of(ports[i]));
      if (i == 0) out.emplace_back(prefix + "_PORT", url);
      std::string at = fmt::format("{}_PORT_{}_{}", prefix, port_of(ports[i]), protocol);
      out.emplace_back(at, url);
      out.emplace_back(at + "_PROTO", lower);
      out.emplace_back(at + "_PORT", port_of(ports[i]));
      out.emplace_back(at + "_ADDR", ip);
    }
  }
  return out;
}

// The files the kubelet writes for a pod and mounts into its containers:
// /etc/hosts (localhost, the pod's address and name, its hostAliases) and
// /etc/hostname. Returns their paths, by container path.
}  // namespace

std::string ResolvConf(const PodContext& pod) {
  const json::value& p = *pod.pod;
  std::vector<std::string> nameservers, searches;
  std::vector<std::pair<std::string, std::string>> options;  // name, value ("" for none)
  auto option = [&](std::string name, std::string value) {
    for (auto& o : options) {
      if (o.first == name) {
        o.second = std::move(value);
        return;
      }
    }
    options.emplace_back(std::move(name), std::move(value));
  };
  auto host = [&] {
    std::ifstream in(pod.resolv_conf);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string key, word;
      if (!(words >> key)) continue;
      if (key == "nameserver" && words >> word) {
        nameservers.push_back(word);
      } else if (key == "search" || key == "domain") {
        while (words >> word) searches.push_back(word);
      } else if (key == "options") {
        while (words >> word) {
          size_t colon = word.find(':');
          option(word.substr(0, colon), colon == std::string::npos ? "" : word.substr(colon + 1));
        }
      }
    }
  };
  std::string policy(api::GetString(p, {"spec", "dnsPolicy"}));
  if (policy.empty()) policy = "ClusterFirst";
  const auto* host_network = api::Find(p, {"spec", "hostNetwork"});
  const bool on_host = host_network && host_network->is_bool() && host_network->get_bool();
  // ClusterFirst on the host's network is Default (the kubelet's rule), as it is without a cluster
  // DNS.
  if ((policy == "ClusterFirst" && on_host) ||
      (policy.starts_with("ClusterFirst") && pod.cluster_dns.empty()))
    policy = "Default";
  if (policy == "ClusterFirst" || policy == "ClusterFirstWithHostNet") {
    std::string ns(api::GetString(p, {"metadata", "namespace"}));
    const std::string& d = pod.cluster_domain;
    host();  // The host's search list follows the cluster's; its nameservers do not.
    nameservers = {pod.cluster_dns};
    searches.insert(searches.begin(), {ns + ".svc." + d, "svc." + d, d});
    options.clear();
    option("ndots", "5");
  } else if (policy == "Default") {
    host();
  }
  // dnsConfig adds to what the policy gave (None: all there is).
  for (const auto& n : api::GetArray(p, {"spec", "dnsConfig", "nameservers"}))
    if (n.is_string()) nameservers.emplace_back(n.get_string());
  for (const auto& s : api::GetArray(p, {"spec", "dnsConfig", "searches"}))
    if (s.is_string()) searches.emplace_back(s.get_string());
  for (const auto& o : api::GetArray(p, {"spec", "dnsConfig", "options"})) {
    std::string name(api::GetString(o, {"name"}));
    if (!name.empty()) option(name, std::string(api::GetString(o, {"value"})));
  }
  // The resolver's limits, as the kubelet keeps them: 3 nameservers, 32 search domains.
  if (nameservers.size() > 3) nameservers.resize(3);
  std::vector<std::string> unique;
  for (auto& s : searches) {
    if (std::find(unique.begin(), unique.end(), s) == unique.end()) unique.push_back(s);
  }
  if (unique.size() > 32) unique.resize(32);
  std::string out;
  if (!unique.empty()) out += "search " + fmt::format("{}", fmt::join(unique, " ")) + "\n";
  for (const auto& n : nameservers) out += "nameserver " + n + "\n";
  if (!options.empty()) {
    out += "options";
    for (const auto& [name, value] : options) {
      out.append(" ").append(name);
      if (!value.empty()) out.append(":").append(value);
    }
    out += "\n";
  }
  return out;
}

namespace {

Result<std::vector<std::pair<std::string, std::string>>> WritePodFiles(const PodContext& pod) {
  const json::value& p = *pod.pod;
  std::string hostname(api::GetString(p, {"spec", "hostname"}));
  if (hostname.empty()) hostname = std::string(api::GetString(p, {"metadata", "name"}));
  std::string hosts =
      "# Kubernetes-managed hosts file.\n"
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\n"
      "fe00::0\tip6-mcastprefix\n"
      "fe00::1\tip6-allnodes\n"
      "fe00::2\tip6-allrouters\n";
  if (!pod.pod_ip.empty()) {
    std::string_view subdomain = api::GetString(p, {"spec", "subdomain"});
    if (subdomain.empty()) {
      hosts += fmt::format("{}\t{}\n", pod.pod_ip, hostname);
    } else {
      hosts +=
          fmt::format("{}\t{}.{}.{}.svc.{}\t{}\n", pod.pod_ip, hostname, subdomain,
                      api::GetString(p, {"metadata", "namespace"}), pod.cluster_domain, hostname);
    }
  }
  const auto& aliases = api::GetArray(p, {"spec", "hostAliases"});
  if (!aliases.empty()) hosts += "\n# Entries added by HostAliases.\n";
  for (const auto& alias : aliases) {
    std::string line(api::GetString(alias, {"ip"}));
    for (const auto& name : api::GetArray(alias, {"hostnames"})) {
      if (name.is_string()) line += "\t" + std::string(name.get_string());
    }
    hosts += line + "\n";
  }
  std::vector<std::pair<std::string, std::string>> out = {
      {"/etc/hosts", pod.pod_dir + "/etc-hosts"},
      {"/etc/hostname", pod.pod_dir + "/etc-hostname"},
      {"/etc/resolv.conf", pod.pod_dir + "/resolv.conf"}};
  KISO_RETURN_IF_ERROR(WriteFileAtomic(out[0].second, hosts));
  KISO_RETURN_IF_ERROR(WriteFileAtomic(out[1].second, hostname + "\n"));
  KISO_RETURN_IF_ERROR(WriteFileAtomic(out[2].second, ResolvConf(pod)));
  return out;
}

Result<std::string> FieldRef(const PodContext& pod, std::string_view path) {
  const json::value& p = *pod.pod;
  if (path == "metadata.name") return std::string(api::GetString(p, {"metadata", "name"}));
  if (path == "metadata.namespace")
    return std::string(api::GetString(p, {"metadata", "namespace"}));
  if (path == "metadata.uid") return std::string(api::GetString(p, {"metadata", "uid"}));
  if (path == "spec.nodeName") return pod.node_name;
  if (path == "spec.serviceAccountName")
    return std::string(api::GetString(p, {"spec", "serviceAccountName"}));
  if (path == "status.podIP") return pod.pod_ip;
  if (path == "status.hostIP") return pod.host_ip;
  if (path.starts_with("metadata.labels['") && path.ends_with("']")) {
    std::string key(path.substr(17, path.size() - 19));
    return std::string(api::GetString(p, {"metadata", "labels", key}));
  }
  if (path.starts_with("metadata.annotations['") && path.ends_with("']")) {
    std::string key(path.substr(22, path.size() - 24));
    return std::string(api::GetString(p, {"metadata", "annotations", key}));
  }
  return MakeStatus(Code::kInvalidArgument, "unsupported fieldRef {:?}", path);
}

// A resourceFieldRef (`limits.cpu`, `requests.memory`…) of the named container
// (`current` when none is named), in units of its divisor, rounded up; a limit
// not set is the node's allocatable, as the kubelet gives it.
Result<std::string> ResourceFieldRef(const PodContext& pod, const json::value& ref,
                                     const json::value* current) {
  std::string container_name(api::GetString(ref, {"containerName"}));
  const json::value* c = current;
  if (!container_name.empty() || !c) {
    c = nullptr;
    for (const auto* list : {"containers", "initContainers"}) {
      for (const auto& spec : api::GetArray(*pod.pod, {"spec", list})) {
        if (api::GetString(spec, {"name"}) == container_name) c = &spec;
      }
    }
  }
  std::string resource(api::GetString(ref, {"resource"}));
  size_t dot = resource.find('.');
  std::string kind = resource.substr(0, dot);
  std::string name = dot == std::string::npos ? "" : resource.substr(dot + 1);
  if (!c || (kind != "limits" && kind != "requests") ||
      (name != "cpu" && name != "memory" && name != "ephemeral-storage")) {
    return MakeStatus(Code::kInvalidArgument, "unsupported resourceFieldRef {:?} of container {:?}",
                      resource, container_name);
  }
  long double value = 0;
  std::string_view q = api::GetString(*c, {"resources", kind, name});
  if (q.empty() || !api::ParseQuantityMilli(q, &value)) {
    // Not set: a request is 0, a limit the node's allocatable (this machine's).
    value = 0;
    if (kind == "limits" && name == "cpu") value = 1000.0L * sysconf(_SC_NPROCESSORS_ONLN);
    if (kind == "limits" && name == "memory")
      value = 1000.0L * sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
  }
  long double divisor = 1000;  // "1"
  if (std::string_view d = api::GetString(ref, {"divisor"}); !d.empty()) {
    if (!api::ParseQuantityMilli(d, &divisor) || divisor <= 0)
      return MakeStatus(Code::kInvalidArgument, "resourceFieldRef divisor {:?}", d);
  }
  return std::to_string(static_cast<int64_t>(std::ceil(value / divisor)));
}

// $(VAR) replaced by the variable's value ($$ is a literal $); an unknown one is kept as is.
std::string ExpandVars(std::string_view text, const std::map<std::string, std::string>& env) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    size_t close = text[i] == '$' && i + 1 < text.size() && text[i + 1] == '('
                       ? text.find(')', i + 2)
                       : std::string_view::npos;
    if (close == std::string_view::npos) {
      out += text[i];
      continue;
    }
    auto it = env.find(std::string(text.substr(i + 2, close - i - 2)));
    out += it != env.end() ? it->second : std::string(text.substr(i, close - i + 1));
    i = close;
  }
  return out;
}

int64_t Milli(const json::value& container, std::string_view kind, std::string_view resource) {
  std::string_view q = api::GetString(container, {"resources", kind, resource});
  long double milli = 0;
  if (q.empty() || !api::ParseQuantityMilli(q, &milli)) return 0;
  return api::SaturatedInt64(milli);
}

}  // namespace

namespace {

int ModeOf(const json::value* v, int fallback) {
  return v && v->is_int64() ? static_cast<int>(v->get_int64()) : fallback;
}

// configMap and secret sources: every key, or the listed items (key → path).
Status AddSource(client::Client* client, bool secret, const std::string& ns,
                 const json::value& source, int mode, VolumeFiles& files) {
  std::string name(api::GetString(source, {secret ? "secretName" : "name"}));
  if (name.empty()) name = std::string(api::GetString(source, {"name"}));
  const auto* optional = api::Find(source, {"optional"});
  auto data = SourceData(client, secret, ns, name);
  if (!data.ok()) {
    if (optional && optional->is_bool() && optional->get_bool()) return Status::Ok();
    return data.status();
  }
  const auto& items = api::GetArray(source, {"items"});
  if (items.empty()) {
    for (const auto& [k, v] : *data) files[k] = {v, mode};
    return Status::Ok();
  }
  for (const auto& item : items) {
    std::string key(api::GetString(item, {"key"}));
    auto it = data->find(key);
    if (it == data->end()) {
      if (optional && optional->is_bool() && optional->get_bool()) continue;
      return MakeStatus(Code::kNotFound, "configmap references non-existent config key: {}", key);
    }
    files[std::string(api::GetString(item, {"path"}))] = {it->second,
                                                          ModeOf(api::Find(item, {"mode"}), mode)};
  }
  return Status::Ok();
}

Status AddDownwardApi(const PodContext& pod, const json::value& source, int mode,
                      VolumeFiles& files) {
  for (const auto& item : api::GetArray(source, {"items"})) {
    std::string path(api::GetString(item, {"path"}));
    if (const auto* f = api::Find(item, {"fieldRef"})) {
      std::string field(api::GetString(*f, {"fieldPath"}));
      std::string value;
      if (field == "metadata.labels" || field == "metadata.annotations") {
        // key="value" lines, sorted, as the kubelet writes them.
        const auto* map = api::Find(*pod.pod, {"metadata", field.substr(9)});
        std::map<std::string, std::string> sorted;
        if (map && map->is_object()) {
          for (const auto& [k, v] : map->get_object())
            if (v.is_string()) sorted[k] = v.get_string();
        }
        for (const auto& [k, v] : sorted) value += fmt::format("{}={:?}\n", k, v);
        if (!value.empty()) value.pop_back();
      } else {
        KISO_ASSIGN_OR_RETURN(value, FieldRef(pod, field));
      }
      files[path] = {value, ModeOf(api::Find(item, {"mode"}), mode)};
    } else if (const auto* r = api::Find(item, {"resourceFieldRef"})) {
      KISO_ASSIGN_OR_RETURN(auto value, ResourceFieldRef(pod, *r, nullptr));
      files[path] = {value, ModeOf(api::Find(item, {"mode"}), mode)};
    }
  }
  return Status::Ok();
}

// A bound token for the pod's service account, requested again once 80% of
// its life (or a day) has passed, as the kubelet's token manager does. When
// it was issued and until when are kept beside the pod, not in the volume.
Status AddToken(client::Client* client, const PodContext& pod, const std::string& volume,
                const json::value& source, int mode, VolumeFiles& files) {
  std::string path(api::GetString(source, {"path"}));
  const auto* seconds_v = api::Find(source, {"expirationSeconds"});
  int64_t seconds = seconds_v && seconds_v->is_int64() ? seconds_v->get_int64() : 3600;
  std::string state_dir = pod.pod_dir + "/tokens/" + volume;
  std::string state = state_dir + "/" + std::to_string(std::hash<std::string>{}(path));
  int64_t now = static_cast<int64_t>(time(nullptr));
  if (auto text = ReadFile(state); text.ok()) {
    // "<issued> <expires>\n<token>"
    int64_t issued = 0, expires = 0;
    size_t nl = text->find('\n');
    if (nl != std::string::npos &&
        sscanf(text->substr(0, nl).c_str(), "%ld %ld", &issued, &expires) == 2 &&
        now < issued + std::min<int64_t>((expires - issued) * 8 / 10, int64_t{24} * 3600)) {
      files[path] = {text->substr(nl + 1), mode};
      return Status::Ok();
    }
  }
  const json::value& p = *pod.pod;
  std::string ns(api::GetString(p, {"metadata", "namespace"}));
  std::string sa(api::GetString(p, {"spec", "serviceAccountName"}));
  if (sa.empty()) sa = "default";
  json::object spec{
      {"expirationSeconds", seconds},
      {"boundObjectRef", json::object{{"kind", "Pod"},
                                      {"apiVersion", "v1"},
                                      {"name", api::GetString(p, {"metadata", "name"})},
                                      {"uid", api::GetString(p, {"metadata", "uid"})}}}};
  if (auto audience = api::GetString(source, {"audience"}); !audience.empty())
    spec["audiences"] = json::array{audience};
  json::object request{{"apiVersion", "authentication.k8s.io/v1"},
                       {"kind", "TokenRequest"},
                       {"spec", std::move(spec)}};
  const api::ResourceType* sas = api::FindResource("", "v1", "serviceaccounts");
  auto reply = client->CreateSubresource(*sas, ns, sa, "token", request);
  if (!reply.ok()) return reply.status().Annotate("request a service account token");
  std::string token(api::GetString(*reply, {"status", "token"}));
  auto expires = ParseRfc3339(api::GetString(*reply, {"status", "expirationTimestamp"}));
  if (token.empty() || !expires)
    return MakeStatus(Code::kInternal, "the TokenRequest answer has no token");
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  KISO_RETURN_IF_ERROR(
      WriteFileAtomic(state, fmt::format("{} {}\n{}", now, expires->seconds, token), 0600));
  files[path] = {token, mode};
  return Status::Ok();
}

}  // namespace

// A persistentVolumeClaim volume: the directory of the volume its claim is
// bound to, on this node (hostPath or local volumes; local-path's are hostPath).
Result<std::string> ClaimedDirectory(client::Client* client, const std::string& ns,
                                     const json::value& source) {
  std::string name(api::GetString(source, {"claimName"}));
  auto claim = client->Get(*api::FindResource("", "v1", "persistentvolumeclaims"), ns, name);
  if (!claim.ok()) {
    return MakeStatus(Code::kNotFound, "persistentvolumeclaim \"{}\" not found", name);
  }
  std::string volume_name(api::GetString(*claim, {"spec", "volumeName"}));
  if (api::GetString(*claim, {"status", "phase"}) != "Bound" || volume_name.empty())
    return MakeStatus(Code::kUnavailable, "persistentvolumeclaim \"{}\" is not bound", name);
  auto volume = client->Get(*api::FindResource("", "v1", "persistentvolumes"), "", volume_name);
  if (!volume.ok() || api::GetString(*volume, {"spec", "claimRef", "uid"}) !=
                          api::GetString(*claim, {"metadata", "uid"})) {
    return MakeStatus(Code::kUnavailable,
                      "persistentvolume \"{}\" of claim \"{}\" is not bound to it", volume_name,
                      name);
  }
  std::error_code ec;
  if (const auto* host = api::Find(*volume, {"spec", "hostPath"})) {
    std::string path(api::GetString(*host, {"path"}));
    std::string_view type = api::GetString(*host, {"type"});
    if (type == "DirectoryOrCreate") {
      fs::create_directories(path, ec);
      if (ec) return MakeStatus(Code::kInternal, "create {}: {}", path, ec.message());
    }
    if (!fs::is_directory(path, ec))
      return MakeStatus(Code::kNotFound, "volume \"{}\": {} is not a directory", volume_name, path);
    return path;
  }
  if (const auto* local = api::Find(*volume, {"spec", "local"})) {
    std::string path(api::GetString(*local, {"path"}));
    if (!fs::exists(path, ec))
      return MakeStatus(Code::kNotFound, "volume \"{}\": {} does not exist", volume_name, path);
    return path;
  }
  return MakeStatus(Code::kInvalidArgument,
                    "volume \"{}\": kiso mounts hostPath and local persistent volumes only",
                    volume_name);
}

namespace {

// fsGroup: the volume's files belong to the group, group-writable (read-only
// ones group-readable), and its directories setgid, as the kubelet sets
// volume ownership for emptyDir and the configMap, secret, downwardAPI and
// projected volumes.
Status ApplyFsGroup(const std::string& dir, gid_t group) {
  std::error_code ec;
  auto own = [&](const fs::path& p) -> Status {
    if (lchown(p.c_str(), static_cast<uid_t>(-1), group) != 0)
      return MakeStatus(Code::kInternal, "fsGroup: chown {}: {}", p.string(), strerror(errno));
    if (fs::is_symlink(p, ec)) return Status::Ok();
    auto perms = fs::status(p, ec).permissions();
    perms |= fs::perms::group_read;
    if ((perms & fs::perms::owner_write) != fs::perms::none) perms |= fs::perms::group_write;
    if (fs::is_directory(p, ec)) perms |= fs::perms::group_exec | fs::perms::set_gid;
    fs::permissions(p, perms, ec);
    return Status::Ok();
  };
  KISO_RETURN_IF_ERROR(own(dir));
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    KISO_RETURN_IF_ERROR(own(it->path()));
  }
  return Status::Ok();
}

bool IsMountPoint(const std::string& dir) {
  struct stat self {
  }, parent{};
  if (::stat(dir.c_str(), &self) != 0 || ::stat((dir + "/..").c_str(), &parent) != 0) return false;
  return self.st_dev != parent.st_dev;
}

int64_t QuantityBytes(std::string_view q) {
  long double milli = 0;
  if (q.empty() || !api::ParseQuantityMilli(q, &milli) || milli <= 0) return 0;
  return api::SaturatedInt64(std::ceil(milli / 1000));
}

int64_t NodeMemoryBytes() {
  return static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGE_SIZE);
}

// The size of a memory-backed emptyDir, as the kubelet sizes it.
int64_t MemoryVolumeSize(const json::value& pod, const json::value& volume) {
  int64_t size = NodeMemoryBytes();
  int64_t pod_limit = 0;
  bool every_container = true;
  for (const auto& c : api::GetArray(pod, {"spec", "containers"})) {
    int64_t limit = QuantityBytes(api::GetString(c, {"resources", "limits", "memory"}));
    if (limit == 0) every_container = false;
    pod_limit += limit;
  }
  if (every_container && pod_limit > 0) size = std::min(size, pod_limit);
  if (int64_t limit = QuantityBytes(api::GetString(volume, {"emptyDir", "sizeLimit"})); limit > 0)
    size = std::min(size, limit);
  return size;
}

// Bytes in use below `dir` (blocks, as du counts them; one file system, links not followed).
int64_t DiskUsage(const std::string& dir) {
  struct stat root {};
  if (::lstat(dir.c_str(), &root) != 0) return 0;
  int64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (st.st_dev != root.st_dev) {
      it.disable_recursion_pending();
      continue;
    }
    total += static_cast<int64_t>(st.st_blocks) * 512;
  }
  return total;
}

}  // namespace

std::optional<std::string> EmptyDirOverLimit(const PodContext& pod) {
  for (const auto& v : api::GetArray(*pod.pod, {"spec", "volumes"})) {
    const auto* empty = api::Find(v, {"emptyDir"});
    if (!empty || api::GetString(*empty, {"medium"}) == "Memory") continue;
    std::string_view limit_text = api::GetString(*empty, {"sizeLimit"});
    int64_t limit = QuantityBytes(limit_text);
    if (limit <= 0) continue;
    std::string name(api::GetString(v, {"name"}));
    if (DiskUsage(pod.pod_dir + "/volumes/" + name) > limit) {
      return fmt::format("Usage of EmptyDir volume \"{}\" exceeds the limit \"{}\". ", name,
                         limit_text);
    }
  }
  return std::nullopt;
}

Status PrepareVolumes(client::Client* client, const PodContext& pod) {
  std::string ns(api::GetString(*pod.pod, {"metadata", "namespace"}));
  const auto* fs_group = api::Find(*pod.pod, {"spec", "securityContext", "fsGroup"});
  auto owned = [&](const std::string& dir) {
    return fs_group && fs_group->is_int64()
               ? ApplyFsGroup(dir, static_cast<gid_t>(fs_group->get_int64()))
               : Status::Ok();
  };
  for (const auto& v : api::GetArray(*pod.pod, {"spec", "volumes"})) {
    std::string name(api::GetString(v, {"name"}));
    std::string dir = pod.pod_dir + "/volumes/" + name;
    std::error_code ec;
    if (api::Find(v, {"hostPath"})) continue;
    if (const auto* claim = api::Find(v, {"persistentVolumeClaim"})) {
      // The volume's directory, where the pod's volumes are (a bind mount follows the link).
      auto target = ClaimedDirectory(client, ns, *claim);
      if (!target.ok()) return target.status().Annotate(fmt::format("volume {:?}", name));
      fs::create_directories(pod.pod_dir + "/volumes", ec);
      if (fs::is_symlink(dir, ec) && fs::read_symlink(dir, ec) == *target) continue;
      fs::remove(dir, ec);
      fs::create_directory_symlink(*target, dir, ec);
      if (ec)
        return MakeStatus(Code::kInternal, "volume {:?}: link {}: {}", name, dir, ec.message());
      continue;
    }
    VolumeFiles files;
    Status added = Status::Ok();
    if (const auto* src = api::Find(v, {"configMap"})) {
      added =
          AddSource(client, false, ns, *src, ModeOf(api::Find(*src, {"defaultMode"}), 0644), files);
    } else if (const auto* src = api::Find(v, {"secret"})) {
      added =
          AddSource(client, true, ns, *src, ModeOf(api::Find(*src, {"defaultMode"}), 0644), files);
    } else if (const auto* src = api::Find(v, {"downwardAPI"})) {
      added = AddDownwardApi(pod, *src, ModeOf(api::Find(*src, {"defaultMode"}), 0644), files);
    } else if (const auto* src = api::Find(v, {"projected"})) {
      int mode = ModeOf(api::Find(*src, {"defaultMode"}), 0644);
      for (const auto& s : api::GetArray(*src, {"sources"})) {
        if (!added.ok()) break;
        if (const auto* cm = api::Find(s, {"configMap"})) {
          added = AddSource(client, false, ns, *cm, mode, files);
        } else if (const auto* secret = api::Find(s, {"secret"})) {
          added = AddSource(client, true, ns, *secret, mode, files);
        } else if (const auto* down = api::Find(s, {"downwardAPI"})) {
          added = AddDownwardApi(pod, *down, mode, files);
        } else if (const auto* token = api::Find(s, {"serviceAccountToken"})) {
          added = AddToken(client, pod, name, *token, mode, files);
        }
      }
    } else {
      // emptyDir, and any other kind treated as scratch space (owned by fsGroup
      // once, when made: what the pod writes there later is its own).
      bool fresh = !fs::exists(dir, ec);
      fs::create_directories(dir, ec);
      if (ec) return MakeStatus(Code::kInternal, "volume {:?}: {}", name, ec.message());
      if (api::GetString(v, {"emptyDir", "medium"}) == "Memory" && !IsMountPoint(dir)) {
        // tmpfs, as large as its sizeLimit, else the pod's memory limit, else
        // the node's memory; its pages are charged to the writer's memory cgroup.
        int64_t size = MemoryVolumeSize(*pod.pod, v);
        std::string options = fmt::format("size={}", size);
        if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
          return MakeStatus(Code::kInternal, "volume {:?}: mount tmpfs on {}: {}", name, dir,
                            std::strerror(errno));
        }
        fresh = true;
      }
      if (fresh) KISO_RETURN_IF_ERROR(owned(dir));
      continue;
    }
    if (!added.ok()) return added.Annotate(fmt::format("volume {:?}", name));
    std::optional<gid_t> group;
    if (fs_group && fs_group->is_int64()) group = static_cast<gid_t>(fs_group->get_int64());
    if (auto s = WriteVolumeAtomically(dir, files, group); !s.ok())
      return s.status().Annotate(fmt::format("volume {:?}", name));
  }
  return Status::Ok();
}

namespace {

// securityContext.seccompProfile (the container's over the pod's): absent
// means RuntimeDefault, as the kubelet's --seccomp-default does it.
Status SetSeccomp(const PodContext& pod, const json::value* profile,
                  runtime::ContainerConfig& config) {
  std::string type(profile ? api::GetString(*profile, {"type"}) : "RuntimeDefault");
  if (type == "RuntimeDefault") {
    config.seccomp = runtime::Seccomp::kRuntimeDefault;
  } else if (type == "Unconfined") {
    config.seccomp = runtime::Seccomp::kUnconfined;
  } else if (type == "Localhost") {
    std::string name(api::GetString(*profile, {"localhostProfile"}));
    if (name.empty() || name.starts_with('/') || name.find("..") != std::string::npos) {
      return MakeStatus(Code::kInvalidArgument,
                        "seccompProfile.localhostProfile {:?} must be a relative path under {}",
                        name, pod.seccomp_dir);
    }
    std::string path = pod.seccomp_dir + "/" + name;
    std::ifstream in(path);
    if (!in) return MakeStatus(Code::kNotFound, "seccomp profile {} does not exist", path);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    boost::system::error_code ec;
    auto parsed = json::parse(text, ec);
    if (ec || !parsed.is_object() || !parsed.as_object().contains("defaultAction")) {
      return MakeStatus(Code::kInvalidArgument,
                        "seccomp profile {} is not an OCI seccomp profile (a JSON object with "
                        "defaultAction): {}",
                        path, ec ? ec.message() : "no defaultAction");
    }
    config.seccomp = runtime::Seccomp::kLocalhost;
    config.seccomp_profile = std::move(text);
  } else {
    return MakeStatus(Code::kInvalidArgument, "unknown seccompProfile.type {:?}", type);
  }
  return Status::Ok();
}

}  // namespace

Result<runtime::ContainerConfig> BuildContainerConfig(client::Client* client, const PodContext& pod,
                                                      const json::value& c,
                                                      const image::Image& image,
                                                      const std::string& image_rootfs) {
  runtime::ContainerConfig config;
  config.name = std::string(api::GetString(c, {"name"}));
  config.image = std::string(api::GetString(c, {"image"}));
  config.image_rootfs = image_rootfs;
  // Kubernetes: command replaces Entrypoint (and drops Cmd); args replace Cmd.
  std::vector<std::string> command;
  std::vector<std::string> args;
  for (const auto& s : api::GetArray(c, {"command"})) {
    if (s.is_string()) command.emplace_back(s.get_string());
  }
  for (const auto& s : api::GetArray(c, {"args"})) {
    if (s.is_string()) args.emplace_back(s.get_string());
  }
  if (command.empty()) {
    command = image.config.entrypoint;
    if (args.empty()) args = image.config.cmd;
  }
  config.args = command;
  config.args.insert(config.args.end(), args.begin(), args.end());
  if (config.args.empty()) {
    return MakeStatus(Code::kInvalidArgument, "no command specified for container {:?}",
                      config.name);
  }
  // Environment: the image's, the Services', then envFrom, then env (later wins, as in the
  // kubelet).
  std::map<std::string, std::string> env;
  std::vector<std::string> order;
  auto set = [&](const std::string& k, std::string v) {
    if (!env.contains(k)) order.push_back(k);
    env[k] = std::move(v);
  };
  for (const auto& e : image.config.env) {
    auto eq = e.find('=');
    set(e.substr(0, eq), eq == std::string::npos ? "" : e.substr(eq + 1));
  }
  KISO_ASSIGN_OR_RETURN(auto service_env, ServiceEnv(client, *pod.pod));
  for (auto& [k, v] : service_env) set(k, std::move(v));
  std::string ns(api::GetString(*pod.pod, {"metadata", "namespace"}));
  for (const auto& from : api::GetArray(c, {"envFrom"})) {
    bool secret = api::Find(from, {"secretRef"}) != nullptr;
    std::string name(secret ? api::GetString(from, {"secretRef", "name"})
                            : api::GetString(from, {"configMapRef", "name"}));
    auto data = SourceData(client, secret, ns, name);
    if (!data.ok()) return data.status();
    std::string prefix(api::GetString(from, {"prefix"}));
    for (const auto& [k, v] : *data) set(prefix + k, v);
  }
  for (const auto& e : api::GetArray(c, {"env"})) {
    std::string name(api::GetString(e, {"name"}));
    if (const auto* from = api::Find(e, {"valueFrom"})) {
      if (const auto* f = api::Find(*from, {"fieldRef"})) {
        KISO_ASSIGN_OR_RETURN(auto v, FieldRef(pod, api::GetString(*f, {"fieldPath"})));
        set(name, v);
      } else if (const auto* r = api::Find(*from, {"resourceFieldRef"})) {
        KISO_ASSIGN_OR_RETURN(auto v, ResourceFieldRef(pod, *r, &c));
        set(name, v);
      } else {
        bool secret = api::Find(*from, {"secretKeyRef"}) != nullptr;
        const json::value* ref = api::Find(*from, {secret ? "secretKeyRef" : "configMapKeyRef"});
        if (!ref)
          return MakeStatus(Code::kInvalidArgument, "env {:?}: unsupported valueFrom", name);
        std::string source(api::GetString(*ref, {"name"}));
        std::string key(api::GetString(*ref, {"key"}));
        auto data = SourceData(client, secret, ns, source);
        if (!data.ok()) return data.status();
        auto it = data->find(key);
        if (it == data->end()) {
          return MakeStatus(Code::kNotFound, "couldn't find key {} in {} {}/{}", key,
                            secret ? "Secret" : "ConfigMap", ns, source);
        }
        set(name, it->second);
      }
    } else {
      set(name, std::string(api::GetString(e, {"value"})));
    }
  }
  for (const auto& k : order) config.env.push_back(k + "=" + env[k]);
  std::string wd(api::GetString(c, {"workingDir"}));
  config.working_dir = !wd.empty()                         ? wd
                       : !image.config.working_dir.empty() ? image.config.working_dir
                                                           : "/";
  auto flag = [&](std::string_view field) {
    const auto* v = api::Find(c, {field});
    return v && v->is_bool() && v->get_bool();
  };
  config.stdin_open = flag("stdin");
  config.stdin_once = config.stdin_open && flag("stdinOnce");
  config.tty = flag("tty");
  // securityContext: the container's over the pod's.
  auto security = [&](std::string_view field) -> const json::value* {
    if (const auto* v = api::Find(c, {"securityContext", field}); v && !v->is_null()) return v;
    if (const auto* v = api::Find(*pod.pod, {"spec", "securityContext", field}); v && !v->is_null())
      return v;
    return nullptr;
  };
  if (const auto* u = security("runAsUser"); u && u->is_int64())
    config.uid = static_cast<uint32_t>(u->get_int64());
  if (const auto* g = security("runAsGroup"); g && g->is_int64())
    config.gid = static_cast<uint32_t>(g->get_int64());
  if (!security("runAsUser") && !image.config.user.empty()) {
    const std::string& u = image.config.user;
    // "1000" or "1000:1000" (names need the image's /etc/passwd: left as root).
    size_t colon = std::min(u.find(':'), u.size());
    uint32_t uid = 0;
    auto [end, ec] = std::from_chars(u.data(), u.data() + colon, uid);
    if (ec == std::errc() && end == u.data() + colon) {
      config.uid = uid;
      uint32_t gid = 0;
      auto [gend, gec] =
          std::from_chars(u.data() + std::min(colon + 1, u.size()), u.data() + u.size(), gid);
      if (colon < u.size() && gec == std::errc() && gend == u.data() + u.size()) config.gid = gid;
    }
  }
  // The pod's supplementalGroups and fsGroup: groups of every container's process.
  for (const auto& g : api::GetArray(*pod.pod, {"spec", "securityContext", "supplementalGroups"}))
    if (g.is_int64()) config.additional_gids.push_back(static_cast<uint32_t>(g.get_int64()));
  if (const auto* g = api::Find(*pod.pod, {"spec", "securityContext", "fsGroup"});
      g && g->is_int64())
    config.additional_gids.push_back(static_cast<uint32_t>(g->get_int64()));
  if (const auto* p = api::Find(c, {"securityContext", "privileged"}); p && p->is_bool())
    config.privileged = p->get_bool();
  for (const auto& cap : api::GetArray(c, {"securityContext", "capabilities", "add"}))
    if (cap.is_string()) config.add_caps.emplace_back(cap.get_string());
  for (const auto& cap : api::GetArray(c, {"securityContext", "capabilities", "drop"}))
    if (cap.is_string()) config.drop_caps.emplace_back(cap.get_string());
  if (auto caps = runtime::Capabilities(config); !caps.ok()) {
    return MakeStatus(Code::kInvalidArgument, "container {:?}: securityContext.capabilities: {}",
                      config.name, caps.status().message());
  }
  if (const auto* a = api::Find(c, {"securityContext", "allowPrivilegeEscalation"});
      a && a->is_bool())
    config.no_new_privileges = !a->get_bool();
  KISO_RETURN_IF_ERROR(SetSeccomp(pod, security("seccompProfile"), config));
  if (const auto* r = api::Find(c, {"securityContext", "readOnlyRootFilesystem"});
      r && r->is_bool())
    config.read_only_rootfs = r->get_bool();
  // Resources → cgroup settings, as the kubelet maps them.
  int64_t cpu_request = Milli(c, "requests", "cpu");
  int64_t cpu_limit = Milli(c, "limits", "cpu");
  if (cpu_request == 0) cpu_request = cpu_limit;
  if (cpu_request > 0) config.cpu_shares = std::max<int64_t>(2, cpu_request * 1024 / 1000);
  if (cpu_limit > 0) config.cpu_quota_us = std::max<int64_t>(1000, cpu_limit * 100000 / 1000);
  config.memory_limit = Milli(c, "limits", "memory") / 1000;
  // Volume mounts.
  std::map<std::string, const json::value*> volumes;
  for (const auto& v : api::GetArray(*pod.pod, {"spec", "volumes"})) {
    volumes[std::string(api::GetString(v, {"name"}))] = &v;
  }
  for (const auto& m : api::GetArray(c, {"volumeMounts"})) {
    std::string name(api::GetString(m, {"name"}));
    auto it = volumes.find(name);
    if (it == volumes.end()) {
      return MakeStatus(Code::kInvalidArgument, "volume {:?} of container {:?} is not in the pod",
                        name, config.name);
    }
    runtime::Mount mount;
    mount.container_path = std::string(api::GetString(m, {"mountPath"}));
    const json::value& v = *it->second;
    if (api::Find(v, {"hostPath"})) {
      mount.host_path = std::string(api::GetString(v, {"hostPath", "path"}));
    } else {
      mount.host_path = pod.pod_dir + "/volumes/" + name;
    }
    // subPath (or subPathExpr, with the container's $(VAR)s): a directory inside the
    // volume (made when missing, as the kubelet does).
    std::string sub(api::GetString(m, {"subPath"}));
    if (sub.empty()) sub = ExpandVars(api::GetString(m, {"subPathExpr"}), env);
    if (!sub.empty()) {
      if (sub.starts_with('/') || sub == ".." || sub.starts_with("../") ||
          sub.find("/../") != std::string::npos || sub.ends_with("/..")) {
        return MakeStatus(Code::kInvalidArgument,
                          "subPath {:?} of volume {:?} must be a relative path within it", sub,
                          name);
      }
      std::error_code ec;
      fs::path base = fs::canonical(mount.host_path, ec);
      if (ec) return MakeStatus(Code::kInternal, "volume {:?}: {}", name, ec.message());
      fs::path inside = base / sub;
      if (!fs::exists(inside, ec)) fs::create_directories(inside, ec);
      // A link inside the volume must not lead out of it.
      fs::path real = fs::canonical(inside, ec);
      auto rel = real.lexically_relative(base);
      if (ec || rel.empty() || *rel.begin() == "..") {
        return MakeStatus(Code::kInvalidArgument, "subPath {:?} of volume {:?} leaves the volume",
                          sub, name);
      }
      mount.host_path = real.string();
    }
    const auto* claim_ro = api::Find(v, {"persistentVolumeClaim", "readOnly"});
    bool source_ro = api::Find(v, {"configMap"}) || api::Find(v, {"secret"}) ||
                     api::Find(v, {"projected"}) || api::Find(v, {"downwardAPI"}) ||
                     (claim_ro && claim_ro->is_bool() && claim_ro->get_bool());
    const auto* ro = api::Find(m, {"readOnly"});
    mount.read_only = source_ro || (ro && ro->is_bool() && ro->get_bool());
    config.mounts.push_back(std::move(mount));
  }
  // /etc/hosts and /etc/hostname, unless the container mounts its own there.
  KISO_ASSIGN_OR_RETURN(auto files, WritePodFiles(pod));
  for (const auto& file : files) {
    bool own = std::any_of(config.mounts.begin(), config.mounts.end(),
                           [&](const runtime::Mount& m) { return m.container_path == file.first; });
    if (!own) config.mounts.push_back({file.first, file.second, false});
  }
  return config;
}

}  // namespace kiso::agent
