#include "client/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <boost/beast/core/detail/base64.hpp>
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
    KubeConfig config;
    config.server = cluster["server"].as<std::string>();
    std::string rest = config.server;
    if (!rest.starts_with("https://")) {
      return MakeStatus(Code::kInvalidArgument, "kubeconfig {}: server {} is not https://", path,
                        config.server);
    }
    rest = rest.substr(8);
    rest = rest.substr(0, rest.find('/'));
    size_t colon = rest.rfind(':');
    if (colon != std::string::npos && rest.find(']') == std::string::npos) {
      config.host = rest.substr(0, colon);
      config.port = std::stoi(rest.substr(colon + 1));
    } else if (rest.starts_with("[")) {
      size_t close = rest.find(']');
      config.host = rest.substr(1, close - 1);
      if (close + 1 < rest.size() && rest[close + 1] == ':')
        config.port = std::stoi(rest.substr(close + 2));
    } else {
      config.host = rest;
    }
    if (cluster["certificate-authority-data"])
      config.ca_pem = Base64Decode(cluster["certificate-authority-data"].as<std::string>());
    if (cluster["insecure-skip-tls-verify"])
      config.insecure = cluster["insecure-skip-tls-verify"].as<bool>();
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
