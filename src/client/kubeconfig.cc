#include "client/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <fstream>
#include <sstream>

namespace kiso::client {

namespace {

YAML::Node Named(const YAML::Node& list, const std::string& name, const char* field) {
  if (!list.IsSequence()) return YAML::Node();
  for (const auto& item : list) {
    if (item["name"] && item["name"].as<std::string>() == name) return item[field];
  }
  return YAML::Node();
}

std::string Base64Decode(const std::string& in) {
  namespace b64 = boost::beast::detail::base64;
  std::string out(b64::decoded_size(in.size()), '\0');
  auto [written, read] = b64::decode(out.data(), in.data(), in.size());
  (void)read;
  out.resize(written);
  return out;
}

}  // namespace

Result<KubeConfig> AtServer(KubeConfig config, std::string_view url) {
  auto u = boost::urls::parse_uri(url);
  if (!u || u->scheme() != "https" || u->encoded_host().empty())
    return MakeStatus(Code::kInvalidArgument, "server {:?} is not https://HOST:PORT", url);
  int port = 443;
  if (u->has_port()) {
    std::string_view p = u->port();
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || port <= 0 || port > 65535)
      return MakeStatus(Code::kInvalidArgument, "server {:?}: not a port", url);
  }
  std::string host(u->encoded_host().data(), u->encoded_host().size());
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  config.server = std::string(url);
  config.host = std::move(host);
  config.port = port;
  return config;
}

Result<std::string> WithServers(std::string_view yaml, const std::vector<std::string>& urls) {
  for (const auto& url : urls) KISO_RETURN_IF_ERROR(AtServer({}, url).status());
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root["clusters"].IsSequence())
      return Status(Code::kInvalidArgument, "a kubeconfig without clusters");
    YAML::Node listed;
    listed["servers"] = urls;
    for (auto item : root["clusters"]) {
      YAML::Node cluster = item["cluster"];
      YAML::Node kept(YAML::NodeType::Sequence);
      for (const auto& ext : cluster["extensions"]) {
        if (ext["name"].as<std::string>("") != kServersExtension) kept.push_back(ext);
      }
      YAML::Node ours;
      ours["name"] = std::string(kServersExtension);
      ours["extension"] = listed;
      kept.push_back(ours);
      cluster["extensions"] = kept;
    }
    YAML::Emitter out;
    out << root;
    return std::string(out.c_str()) + "\n";
  } catch (const std::exception& e) {
    return MakeStatus(Code::kInvalidArgument, "kubeconfig: {}", e.what());
  }
}

Result<KubeConfig> LoadKubeConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return MakeStatus(Code::kNotFound, "kubeconfig {}: cannot open", path);
  std::stringstream text;
  text << in.rdbuf();
  try {
    YAML::Node root = YAML::Load(text.str());
    std::string context = root["current-context"] ? root["current-context"].as<std::string>() : "";
    YAML::Node ctx = Named(root["contexts"], context, "context");
    if (!ctx)
      return MakeStatus(Code::kInvalidArgument, "kubeconfig {}: no context {:?}", path, context);
    YAML::Node cluster = Named(root["clusters"], ctx["cluster"].as<std::string>(""), "cluster");
    YAML::Node user = Named(root["users"], ctx["user"].as<std::string>(""), "user");
    if (!cluster || !cluster["server"]) {
      return MakeStatus(Code::kInvalidArgument,
                        "kubeconfig {}: the context's cluster has no server", path);
    }
    auto aimed = AtServer({}, cluster["server"].as<std::string>());
    if (!aimed.ok()) {
      return MakeStatus(Code::kInvalidArgument, "kubeconfig {}: {}", path,
                        aimed.status().message());
    }
    KubeConfig config = *aimed;
    if (cluster["certificate-authority-data"])
      config.ca_pem = Base64Decode(cluster["certificate-authority-data"].as<std::string>());
    if (cluster["insecure-skip-tls-verify"])
      config.insecure = cluster["insecure-skip-tls-verify"].as<bool>();
    for (const auto& ext : cluster["extensions"]) {
      if (ext["name"].as<std::string>("") != kServersExtension) continue;
      for (const auto& url : ext["extension"]["servers"]) {
        auto at = AtServer({}, url.as<std::string>());
        if (!at.ok()) {
          return MakeStatus(Code::kInvalidArgument, "kubeconfig {}: {}: {}", path,
                            kServersExtension, at.status().message());
        }
        config.servers.push_back(at->server);
      }
    }
    if (user && user["token"]) config.token = user["token"].as<std::string>();
    if (user && user["client-certificate-data"] && user["client-key-data"]) {
      config.client_cert_pem = Base64Decode(user["client-certificate-data"].as<std::string>());
      config.client_key_pem = Base64Decode(user["client-key-data"].as<std::string>());
    }
    return config;
  } catch (const std::exception& e) {
    return MakeStatus(Code::kInvalidArgument, "kubeconfig {}: {}", path, e.what());
  }
}

}  // namespace kiso::client
