// Opens a fresh Store of a named backend for a test: "sqlite" in a temporary
// directory, "etcd" on a real etcd server started once per test binary. Each
// test gets its own key prefix, so tests never see each other's keys.
#pragma once

#include <memory>
#include <string>

#include "store/store.h"
#include "support/etcd_process.h"
#include "support/temp_dir.h"

namespace kiso::testing {

class StoreFixture {
 public:
  // Opens `backend`; on failure the Result says why (e.g. etcd not installed).
  static kiso::Result<std::unique_ptr<StoreFixture>> Open(const std::string& backend);

  kiso::store::Store& store() { return *store_; }
  // A key prefix unique to this fixture.
  const std::string& prefix() const { return prefix_; }
  std::string Key(const std::string& name) const { return prefix_ + name; }
  // The sqlite file (empty for etcd).
  const std::string& sqlite_path() const { return sqlite_path_; }
  // Closes and reopens the store (sqlite only): a restart.
  kiso::Status Reopen();

 private:
  std::unique_ptr<TempDir> dir_;
  std::string sqlite_path_;
  std::string prefix_;
  std::unique_ptr<kiso::store::Store> store_;
};

// The etcd server shared by every test of this process (started on first use).
kiso::Result<EtcdProcess*> SharedEtcd();

}  // namespace kiso::testing
