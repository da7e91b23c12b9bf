// Registry client for the OCI distribution API v2: pulls manifests (indexes
// resolved to linux/amd64), configs and layers into an ImageStore, verifying
// every digest. Anonymous access and bearer tokens (the WWW-Authenticate
// challenge); plain HTTP only for registries configured as insecure (and for
// 127.0.0.1/localhost), HTTPS with the system's CAs otherwise. Mirrors come
// from a registries.yaml in K3s' shape:
//   mirrors:
//     docker.io:
//       endpoint: ["http://127.0.0.1:5000"]
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "image/image_store.h"
#include "image/reference.h"

namespace kiso::image {

struct RegistryConfig {
  // Registry host → endpoints tried in order ("http://127.0.0.1:5000"); they
  // replace the registry itself, which is then never contacted.
  std::map<std::string, std::vector<std::string>> mirrors;
  // Loads a registries.yaml; a missing file is an empty config.
  static Result<RegistryConfig> Load(const std::string& path);
};

struct PullProgress {
  std::string digest;  // The blob being fetched.
  int64_t done = 0;
  int64_t total = 0;
};

class Registry {
 public:
  explicit Registry(RegistryConfig config) : config_(std::move(config)) {}
  // Pulls `ref` into `store` and names it there. Errors carry the registry's
  // answer: "pull 127.0.0.1:5000/x:1: manifest unknown: manifest unknown".
  Result<Image> Pull(ImageStore& store, const Reference& ref,
                     const std::function<void(const PullProgress&)>& progress = {});

 private:
  RegistryConfig config_;
};

}  // namespace kiso::image
