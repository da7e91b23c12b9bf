#include "common/plugin.h"

#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

#include "common/file.h"

namespace kiso {

Result<void*> PluginSymbol(const std::string& file, const std::string& built, const char* symbol) {
  static std::mutex mu;
  static std::map<std::string, void*> loaded;  // file → handle, never closed.
  std::lock_guard lock(mu);
  void*& handle = loaded[file];
  std::vector<std::string> tried;  // Why each place would not do.
  if (handle == nullptr) {
    for (const std::string& path : {ExecutableDir() + "/" + file, built}) {
      if (!std::filesystem::exists(path)) {
        tried.push_back(path + ": not there");
        continue;
      }
      // Never unloaded: a library may keep threads (gRPC) or callbacks.
      handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle != nullptr) break;
      tried.push_back(path + ": " + dlerror());
    }
    if (handle == nullptr) {
      return MakeStatus(Code::kUnavailable, "kiso's plugin {} is not usable ({})", file,
                        fmt::join(tried, "; "));
    }
  }
  void* address = dlsym(handle, symbol);
  if (address == nullptr)
    return MakeStatus(Code::kUnavailable, "kiso's plugin {} has no {}", file, symbol);
  return address;
}

}  // namespace kiso
