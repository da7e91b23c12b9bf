#include "network/cni.h"

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/cidr.h"
#include "common/fault.h"
#include "common/process.h"
#include "network/bridge.h"

namespace kiso::network {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string DefaultConflist(const CniOptions& o) {
  json::object ipam{{"type", "host-local"},
                    {"ranges", json::array{json::array{json::object{{"subnet", o.pod_cidr}}}}},
                    {"dataDir", o.cache_dir + "/ipam"}};
  json::object bridge{{"type", "bridge"},
                      {"bridge", o.bridge},
                      {"isGateway", true},
                      // Pods reach Services, the node and beyond through it.
                      {"isDefaultGateway", true},
                      {"ipMasq", false},
                      {"hairpinMode", true},
                      {"ipam", std::move(ipam)}};
  if (o.mtu > 0) bridge["mtu"] = o.mtu;
  json::object conflist{
      {"cniVersion", "1.0.0"},
      {"name", "kiso"},
      {"plugins",
       json::array{std::move(bridge),
                   json::object{{"type", "portmap"},
                                {"capabilities", json::object{{"portMappings", true}}}}}}};
  return json::serialize(conflist);
}

// The plugin's error: CNI errors are {"code":N,"msg":"...","details":"..."} on stdout.
std::string PluginError(const CommandResult& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.out, ec);
  if (!ec && v.is_object() && v.as_object().contains("msg")) {
    std::string msg(v.as_object().at("msg").as_string());
    if (const auto* d = v.as_object().if_contains("details");
        d && d->is_string() && !d->get_string().empty()) {
      msg += ": " + std::string(d->get_string());
    }
    return msg;
  }
  return r.err.empty() ? r.out : r.err;
}

}  // namespace

Result<std::unique_ptr<CniNetwork>> CniNetwork::Create(CniOptions options) {
  std::unique_ptr<CniNetwork> n(new CniNetwork(options));
  std::error_code ec;
  fs::create_directories(options.cache_dir + "/results", ec);
  if (ec) return MakeStatus(Code::kInternal, "create {}: {}", options.cache_dir, ec.message());
  // kiso's own list (named "kiso") is rewritten to the current default at each
  // start; anyone else's is used as it is.
  bool ours = !fs::exists(options.conflist);
  if (!ours) {
    boost::system::error_code old_ec;
    auto old = json::parse(Slurp(options.conflist), old_ec);
    ours = !old_ec && old.is_object() && old.as_object().contains("name") &&
           old.as_object().at("name") == "kiso";
  }
  n->ours_ = ours;
  // Without a range yet (it comes with the Node's spec.podCIDR), the plugins of
  // the list it will be are checked now, and the list written when it comes.
  std::string text;
  if (ours) {
    CniOptions shape = options;
    if (shape.pod_cidr.empty()) shape.pod_cidr = "10.42.0.0/24";
    text = DefaultConflist(shape);
    if (!options.pod_cidr.empty()) KISO_RETURN_IF_ERROR(n->SetPodCidr(options.pod_cidr));
  } else {
    text = Slurp(options.conflist);
    n->conflist_text_ = text;
  }
  boost::system::error_code jec;
  auto v = json::parse(text, jec);
  if (jec || !v.is_object() || !v.as_object().contains("plugins")) {
    return MakeStatus(Code::kInvalidArgument, "{}: not a CNI network configuration list",
                      options.conflist);
  }
  n->name_ = std::string(v.as_object().at("name").as_string());
  for (const auto& p : v.as_object().at("plugins").as_array()) {
    std::string type(p.as_object().at("type").as_string());
    if (n->FindPlugin(type).empty()) {
      return MakeStatus(Code::kNotFound,
                        "CNI plugin {:?} not found in {} (install containernetworking-plugins)",
                        type, fmt::join(options.plugin_dirs, ":"));
    }
  }
  return n;
}

Status CniNetwork::SetPodCidr(const std::string& pod_cidr) {
  if (!ours_) return Status::Ok();  // Someone else's list: its own IPAM decides.
  CniOptions o = options_;
  o.pod_cidr = pod_cidr;
  KISO_ASSIGN_OR_RETURN(Ipv4Cidr range, Ipv4Cidr::Parse(pod_cidr));
  std::string text = DefaultConflist(o);
  std::error_code ec;
  fs::create_directories(fs::path(o.conflist).parent_path(), ec);
  {
    std::ofstream out(o.conflist + ".tmp", std::ios::trunc);
    out << text;
    if (!out.flush() || rename((o.conflist + ".tmp").c_str(), o.conflist.c_str()) != 0)
      return MakeStatus(Code::kInternal, "write {}: {}", o.conflist, strerror(errno));
  }
  std::lock_guard lock(mu_);
  if (conflist_text_ != text || !bridge_) {
    // Where host-local keeps the list's addresses: <dataDir>/<network name>.
    bridge_ = std::make_shared<BridgeNetwork>(
        BridgeOptions{o.bridge, range, o.mtu, o.cache_dir + "/ipam/kiso"});
  }
  conflist_text_ = std::move(text);
  return Status::Ok();
}

bool CniNetwork::configured() const {
  std::lock_guard lock(mu_);
  return !conflist_text_.empty();
}

Result<std::string> CniNetwork::ConflistText() const {
  std::lock_guard lock(mu_);
  if (conflist_text_.empty()) {
    return Status(Code::kUnavailable,
                  "the node has no pod range yet (spec.podCIDR, given by the server's node IPAM "
                  "controller from --cluster-cidr, or the agent's --pod-cidr)");
  }
  return conflist_text_;
}

std::string CniNetwork::FindPlugin(const std::string& type) const {
  for (const auto& dir : options_.plugin_dirs) {
    std::string p = fmt::format("{}/{}", dir, type);
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

namespace {

struct Invocation {
  std::string command;  // ADD, DEL.
  std::string container_id;
  std::string netns;
  std::string ifname;
  std::string path;  // CNI_PATH.
};

Result<std::string> Invoke(const std::string& plugin, const Invocation& in,
                           const json::object& config) {
  CommandOptions o;
  o.stdin_data = json::serialize(config);
  o.env = {{"CNI_COMMAND", in.command},
           {"CNI_CONTAINERID", in.container_id},
           {"CNI_NETNS", in.netns},
           {"CNI_IFNAME", in.ifname},
           {"CNI_PATH", in.path}};
  KISO_ASSIGN_OR_RETURN(auto r, RunCommand({plugin}, o));
  if (r.exit_code != 0) {
    return MakeStatus(Code::kInternal, "CNI {} {} for {}: {}", fs::path(plugin).filename().string(),
                      in.command, in.container_id, PluginError(r));
  }
  return r.out;
}

Result<Attachment> AttachmentOf(const std::string& sandbox_id, const json::value& result) {
  Attachment a;
  const auto* ips = result.is_object() ? result.as_object().if_contains("ips") : nullptr;
  if (ips && ips->is_array() && !ips->get_array().empty()) {
    std::string addr(ips->get_array()[0].as_object().at("address").as_string());
    a.ip = addr.substr(0, addr.find('/'));
    if (const auto* gw = ips->get_array()[0].as_object().if_contains("gateway"))
      a.gateway = std::string(gw->as_string());
  }
  if (a.ip.empty()) {
    return MakeStatus(Code::kInternal, "CNI result for {} has no IP address", sandbox_id);
  }
  return a;
}

}  // namespace

Result<Attachment> CniNetwork::Add(const std::string& sandbox_id, const std::string& netns,
                                   const std::vector<PortMapping>& ports) {
  KISO_ASSIGN_OR_RETURN(std::string text, ConflistText());
  std::shared_ptr<BridgeNetwork> bridge;
  {
    std::lock_guard lock(mu_);
    bridge = bridge_;
  }
  std::string path = fmt::format("{}", fmt::join(options_.plugin_dirs, ":"));
  // "lo" is up already: the runtime's sandbox brings it up as it makes the
  // namespace (the loopback plugin's whole work, one process fewer a pod).
  auto list = json::parse(text).as_object();
  Invocation in{"ADD", sandbox_id, netns, "eth0", path};
  json::value prev;
  for (const auto& p : list.at("plugins").as_array()) {
    json::object config = p.as_object();
    config["name"] = list.at("name");
    config["cniVersion"] = list.at("cniVersion");
    if (!prev.is_null()) config["prevResult"] = prev;
    if (config.contains("capabilities") && !ports.empty()) {
      json::array mappings;
      for (const auto& m : ports) {
        mappings.push_back(json::object{{"hostPort", m.host_port},
                                        {"containerPort", m.container_port},
                                        {"protocol", m.protocol}});
      }
      config["runtimeConfig"] = json::object{{"portMappings", std::move(mappings)}};
    } else if (config.contains("capabilities") && ports.empty() &&
               config.at("type").as_string() == "portmap") {
      continue;  // Nothing to map.
    }
    if (bridge && config.at("type") == "bridge") {  // kiso's own list: done here.
      auto result = bridge->Add(sandbox_id, netns);
      if (!result.ok()) {
        return MakeStatus(result.status().code(), "attach {} to {}: {}", sandbox_id,
                          options_.bridge, result.status().message());
      }
      prev = std::move(*result);
      continue;
    }
    auto out = Invoke(FindPlugin(std::string(config.at("type").as_string())), in, config);
    if (!out.ok()) {
      (void)Del(sandbox_id, netns);
      return out.status();
    }
    boost::system::error_code ec;
    prev = json::parse(*out, ec);
    if (ec) return MakeStatus(Code::kInternal, "CNI ADD for {}: bad result {:?}", sandbox_id, *out);
  }
  CrashPoint("cni");
  // The cached result is what DEL, adoption and reset need: written whole or not at all.
  std::string cache = options_.cache_dir + "/results/" + sandbox_id;
  {
    std::ofstream out(cache + ".tmp", std::ios::trunc);
    // "bridge": made by BridgeNetwork; "ports": whether portmap has anything to undo.
    json::object entry{{"netns", netns}, {"result", prev}, {"ports", !ports.empty()}};
    if (bridge) entry["bridge"] = "kiso";
    out << json::serialize(entry);
    if (!out.flush() || rename((cache + ".tmp").c_str(), cache.c_str()) != 0) {
      Status s = MakeStatus(Code::kInternal, "CNI ADD for {}: cache the result in {}: {}",
                            sandbox_id, cache, strerror(errno));
      (void)Del(sandbox_id, netns);
      return s;
    }
  }
  return AttachmentOf(sandbox_id, prev);
}

Result<Attachment> CniNetwork::Cached(const std::string& sandbox_id) const {
  boost::system::error_code ec;
  auto cached = json::parse(Slurp(options_.cache_dir + "/results/" + sandbox_id), ec);
  if (ec || !cached.is_object()) {
    return MakeStatus(Code::kNotFound, "no CNI attachment cached for {}", sandbox_id);
  }
  return AttachmentOf(sandbox_id, cached.as_object().at("result"));
}

Status CniNetwork::Del(const std::string& sandbox_id, const std::string& netns) {
  std::string path = fmt::format("{}", fmt::join(options_.plugin_dirs, ":"));
  std::string cache = options_.cache_dir + "/results/" + sandbox_id;
  boost::system::error_code ec;
  auto cached = json::parse(Slurp(cache), ec);
  json::value prev = !ec && cached.is_object() ? cached.as_object().at("result") : json::value();
  // A namespace that is gone: plugins must still release what they hold (CNI spec).
  std::string ns = fs::exists(netns) ? netns : "";
  if (ec && !configured()) return Status::Ok();  // Never attached: no range, no ADD.
  KISO_ASSIGN_OR_RETURN(std::string text, ConflistText());
  auto list = json::parse(text).as_object();
  const auto& plugins = list.at("plugins").as_array();
  Invocation in{"DEL", sandbox_id, ns, "eth0", path};
  // Attached by BridgeNetwork (else by the plugins, before kiso did it itself,
  // or not known: no cached result), and with host ports or not.
  const json::object* entry = !ec && cached.is_object() ? &cached.as_object() : nullptr;
  const bool ours = entry != nullptr && entry->contains("bridge");
  const bool mapped = entry == nullptr || !ours || !entry->contains("ports") ||
                      entry->at("ports") != json::value(false);
  std::shared_ptr<BridgeNetwork> bridge;
  {
    std::lock_guard lock(mu_);
    bridge = bridge_;
  }
  Status first_error;
  for (auto it = plugins.rbegin(); it != plugins.rend(); ++it) {
    json::object config = it->as_object();
    if (config.at("type") == "portmap" && !mapped) continue;  // Nothing mapped.
    if (config.at("type") == "bridge" && bridge && (ours || entry == nullptr)) {
      std::string ip;
      if (auto a = AttachmentOf(sandbox_id, prev); a.ok()) ip = a->ip;
      Status s = bridge->Del(sandbox_id, ns, ip);
      if (!s.ok() && first_error.ok()) first_error = s;
      continue;
    }
    config["name"] = list.at("name");
    config["cniVersion"] = list.at("cniVersion");
    if (!prev.is_null()) config["prevResult"] = prev;
    auto out = Invoke(FindPlugin(std::string(config.at("type").as_string())), in, config);
    if (!out.ok() && first_error.ok()) first_error = out.status();
  }
  if (!first_error.ok()) return first_error;
  std::error_code fec;
  fs::remove(cache, fec);
  fs::remove(cache + ".tmp", fec);
  return Status::Ok();
}

std::vector<std::string> CniNetwork::Attached() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.cache_dir + "/results", ec)) {
    std::string name = e.path().filename().string();
    if (name.ends_with(".tmp")) name.resize(name.size() - 4);  // A write a crash cut short.
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

void CniNetwork::Reset(const CniOptions& options, std::vector<std::string>* removed,
                       std::vector<std::string>* failed) {
  std::error_code ec;
  if (fs::exists(options.conflist, ec)) {
    auto network = Create(options);
    if (network.ok()) {
      for (const auto& id : (*network)->Attached()) {
        auto cached = (*network)->Cached(id);
        boost::system::error_code jec;
        auto entry = json::parse(Slurp(options.cache_dir + "/results/" + id), jec);
        std::string netns = !jec && entry.is_object() && entry.as_object().contains("netns") &&
                                    entry.as_object().at("netns").is_string()
                                ? std::string(entry.as_object().at("netns").get_string())
                                : "";
        Status s = (*network)->Del(id, netns);
        if (s.ok()) {
          removed->push_back(fmt::format("network of sandbox {}{}", id.substr(0, 12),
                                         cached.ok() ? " (" + cached->ip + ")" : ""));
        } else {
          failed->push_back(s.message());
        }
      }
    } else {
      failed->push_back(network.status().message());
    }
  }
  if (!options.bridge.empty()) {
    Status s = DeleteLink(options.bridge);
    if (s.ok()) {
      removed->push_back("link " + options.bridge);
    } else if (s.code() != Code::kNotFound) {
      failed->push_back(s.message());
    }
  }
  for (const char* sub : {"results", "ipam"}) {
    std::string dir = options.cache_dir + "/" + sub;
    if (fs::exists(dir, ec) && fs::remove_all(dir, ec) > 0 && !ec)
      removed->push_back("CNI state " + dir);
  }
}

Status CniNetwork::DeleteLink(const std::string& name) {
  std::error_code ec;
  if (name.empty() || name.find('/') != std::string::npos ||
      !fs::exists("/sys/class/net/" + name, ec)) {
    return MakeStatus(Code::kNotFound, "link {:?} not found", name);
  }
  KISO_ASSIGN_OR_RETURN(auto r, RunCommand({"/usr/sbin/ip", "link", "del", name}));
  if (r.exit_code != 0) return MakeStatus(Code::kInternal, "ip link del {}: {}", name, r.err);
  return Status::Ok();
}

void CniNetwork::RemoveRules(std::vector<std::string>* removed, std::vector<std::string>* failed) {
  for (const char* family : {"iptables", "ip6tables"}) {
    std::string save = fmt::format("/usr/sbin/{}-save", family);
    std::string restore = fmt::format("/usr/sbin/{}-restore", family);
    if (access(save.c_str(), X_OK) != 0 || access(restore.c_str(), X_OK) != 0) continue;
    auto saved = RunCommand({save});
    if (!saved.ok() || saved->exit_code != 0) continue;
    // Each table whose rules mention a CNI chain, rewritten without them and
    // restored whole (iptables-restore replaces only the tables it is given).
    std::istringstream in(saved->out);
    std::string line, table, kept;
    std::vector<std::string> dropped;
    bool table_touched = false;
    std::string tables;
    auto finish = [&] {
      if (table_touched) tables += kept;
      kept.clear();
      table_touched = false;
    };
    while (std::getline(in, line)) {
      if (line.starts_with("#")) continue;
      if (line.starts_with("*")) {
        finish();
        table = line.substr(1);
      }
      bool cni = (line.starts_with(":CNI-") || line.starts_with("-A ")) &&
                 line.find("CNI-") != std::string::npos;
      if (cni) {
        dropped.push_back(fmt::format("{} {} {}", family, table, line));
        table_touched = true;
        continue;
      }
      kept += line + "\n";
    }
    finish();
    if (dropped.empty()) continue;
    CommandOptions options;
    options.stdin_data = tables;
    auto restored = RunCommand({restore}, options);
    if (restored.ok() && restored->exit_code == 0) {
      removed->insert(removed->end(), dropped.begin(), dropped.end());
    } else {
      failed->push_back(fmt::format("{}: {}", restore,
                                    restored.ok() ? restored->err : restored.status().message()));
    }
  }
}

}  // namespace kiso::network
