// OpenEtcdStore: loads kiso-etcd.so on first use (see etcd_store.h).
#include "common/plugin.h"
#include "store/etcd_store.h"

namespace kiso::store {

Result<std::unique_ptr<Store>> OpenEtcdStore(const EtcdOptions& options) {
  auto entry = PluginSymbol("kiso-etcd.so", KISO_ETCD_PLUGIN_BUILT, "KisoOpenEtcdStore");
  if (!entry.ok()) {
    return MakeStatus(Code::kUnavailable,
                      "etcd:// needs kiso's etcd plugin beside the kiso binary: {}",
                      entry.status().message());
  }
  auto open = reinterpret_cast<decltype(&KisoOpenEtcdStore)>(*entry);
  Result<std::unique_ptr<Store>> out = Status(Code::kInternal, "the etcd plugin answered nothing");
  open(&options, &out);
  return out;
}

}  // namespace kiso::store
