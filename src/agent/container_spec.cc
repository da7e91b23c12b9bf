#include "agent/container_spec.h"

#include <openssl/evp.h>

#include <boost/json.hpp>
#include <charconv>
#include <filesystem>
#include <fstream>

#include "api/object.h"
#include "api/validation.h"
#include "runtime/oci_spec.h"

namespace kiso::agent {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

const api::ResourceType& ConfigMaps() { return *api::FindResource("", "v1", "configmaps"); }
const api::ResourceType& Secrets() { return *api::FindResource("", "v1", "secrets"); }

std::string Base64Decode(std::string_view in) {
  std::string out(in.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return "";
  out.resize(static_cast<size_t>(n));
  // EVP_DecodeBlock keeps the zero bytes that '=' padding stands for.
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) out.pop_back();
  return out;
}

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
      out[k] = secret ? Base64Decode(v.get_string()) : std::string(v.get_string());
    }
  }
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

int64_t Milli(const json::value& container, std::string_view kind, std::string_view resource) {
  std::string_view q = api::GetString(container, {"resources", kind, resource});
  long double milli = 0;
  if (q.empty() || !api::ParseQuantityMilli(q, &milli)) return 0;
  return api::SaturatedInt64(milli);
}

}  // namespace

Status PrepareVolumes(client::Client* client, const PodContext& pod) {
  std::string ns(api::GetString(*pod.pod, {"metadata", "namespace"}));
  for (const auto& v : api::GetArray(*pod.pod, {"spec", "volumes"})) {
    std::string name(api::GetString(v, {"name"}));
    std::string dir = pod.pod_dir + "/volumes/" + name;
    std::error_code ec;
    if (api::Find(v, {"hostPath"})) continue;
    bool secret = api::Find(v, {"secret"}) != nullptr;
    if (api::Find(v, {"configMap"}) || secret) {
      std::string source(secret ? api::GetString(v, {"secret", "secretName"})
                                : api::GetString(v, {"configMap", "name"}));
      auto data = SourceData(client, secret, ns, source);
      if (!data.ok()) return data.status().Annotate(fmt::format("volume {:?}", name));
      fs::create_directories(dir, ec);
      for (const auto& [k, value] : *data) {
        std::ofstream(fmt::format("{}/{}", dir, k), std::ios::trunc | std::ios::binary) << value;
      }
      continue;
    }
    // emptyDir, and any other kind treated as scratch space.
    fs::create_directories(dir, ec);
    if (ec) return MakeStatus(Code::kInternal, "volume {:?}: {}", name, ec.message());
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
  // Environment: the image's, then envFrom, then env (later wins, as in the kubelet).
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
    bool source_ro = api::Find(v, {"configMap"}) || api::Find(v, {"secret"});
    const auto* ro = api::Find(m, {"readOnly"});
    mount.read_only = source_ro || (ro && ro->is_bool() && ro->get_bool());
    config.mounts.push_back(std::move(mount));
  }
  return config;
}

}  // namespace kiso::agent
