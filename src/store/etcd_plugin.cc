// OpenEtcdStore: loads kiso-etcd.so on first use (see etcd_store.h).
#include <dlfcn.h>

#include <filesystem>
#include <mutex>

#include "common/file.h"
#include "store/etcd_store.h"

namespace kiso::store {

namespace {

using OpenFn = decltype(&KisoOpenEtcdStore);

// Loaded once and never unloaded (gRPC keeps threads of its own): from beside
// the executable (an installed kiso), else where this build tree put it
// (tests and benchmarks run from it).
Result<OpenFn> LoadPlugin() {
  static std::mutex mu;
  static OpenFn open = nullptr;
  std::lock_guard lock(mu);
  if (open != nullptr) return open;
  std::vector<std::string> tried;  // Why each place would not do.
  for (const std::string& path :
       {ExecutableDir() + "/kiso-etcd.so", std::string(KISO_ETCD_PLUGIN_BUILT)}) {
    if (!std::filesystem::exists(path)) {
      tried.push_back(path + ": not there");
      continue;
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      tried.push_back(path + ": " + dlerror());
      continue;
    }
    open = reinterpret_cast<OpenFn>(dlsym(handle, "KisoOpenEtcdStore"));
    if (open != nullptr) return open;
    tried.push_back(path + ": no KisoOpenEtcdStore");
  }
  return MakeStatus(Code::kUnavailable,
                    "etcd:// needs kiso's etcd plugin, kiso-etcd.so, beside the kiso binary ({})",
                    fmt::join(tried, "; "));
}

}  // namespace

Result<std::unique_ptr<Store>> OpenEtcdStore(const EtcdOptions& options) {
  KISO_ASSIGN_OR_RETURN(OpenFn open, LoadPlugin());
  Result<std::unique_ptr<Store>> out = Status(Code::kInternal, "the etcd plugin answered nothing");
  open(&options, &out);
  return out;
}

}  // namespace kiso::store
