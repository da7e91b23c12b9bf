// OpenEtcdStore: loads kiso-etcd.so on first use (see etcd_store.h).
#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "store/etcd_store.h"

namespace kiso::store {

namespace {

using OpenFn = void (*)(const EtcdOptions*, Result<std::unique_ptr<Store>>*);

// The places the plugin may be: beside the executable (an installed kiso),
// then where this build tree put it (tests and benchmarks run from it).
std::vector<std::string> PluginPaths() {
  std::vector<std::string> paths;
  char self[4096] = {};
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    paths.push_back(
        (std::filesystem::path(std::string(self, static_cast<size_t>(n))).parent_path() /
         "kiso-etcd.so")
            .string());
  }
  paths.emplace_back(KISO_ETCD_PLUGIN_BUILT);
  return paths;
}

// Loaded once and never unloaded (gRPC keeps threads of its own).
Result<OpenFn> LoadPlugin() {
  static std::mutex mu;
  static OpenFn open = nullptr;
  std::lock_guard lock(mu);
  if (open != nullptr) return open;
  std::string tried;
  for (const auto& path : PluginPaths()) {
    if (!std::filesystem::exists(path)) {
      tried += fmt::format("{}{}: not there", tried.empty() ? "" : "; ", path);
      continue;
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      tried += fmt::format("{}{}: {}", tried.empty() ? "" : "; ", path, dlerror());
      continue;
    }
    open = reinterpret_cast<OpenFn>(dlsym(handle, "KisoOpenEtcdStore"));
    if (open != nullptr) return open;
    tried += fmt::format("{}{}: no KisoOpenEtcdStore", tried.empty() ? "" : "; ", path);
  }
  return MakeStatus(Code::kUnavailable,
                    "etcd:// needs kiso's etcd plugin, kiso-etcd.so, beside the kiso binary ({})",
                    tried);
}

}  // namespace

Result<std::unique_ptr<Store>> OpenEtcdStore(const EtcdOptions& options) {
  KISO_ASSIGN_OR_RETURN(OpenFn open, LoadPlugin());
  Result<std::unique_ptr<Store>> out = Status(Code::kInternal, "the etcd plugin answered nothing");
  open(&options, &out);
  return out;
}

}  // namespace kiso::store
