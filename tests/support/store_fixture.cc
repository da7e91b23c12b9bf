#include "support/store_fixture.h"

#include <atomic>
#include <mutex>

#include "store/sqlite_store.h"

namespace kiso::testing {

kiso::Result<EtcdProcess*> SharedEtcd() {
  static std::mutex mu;
  static std::unique_ptr<EtcdProcess>* etcd =
      nullptr;  // Lives until exit; its destructor kills etcd via atexit below.
  static kiso::Status failure;
  std::lock_guard lock(mu);
  if (etcd == nullptr && failure.ok()) {
    auto started = EtcdProcess::Start();
    if (!started.ok()) {
      failure = started.status();
    } else {
      etcd = new std::unique_ptr<EtcdProcess>(std::move(started).value());
      std::atexit([] { etcd->reset(); });
    }
  }
  if (!failure.ok()) return failure;
  return etcd->get();
}

kiso::Result<std::unique_ptr<StoreFixture>> StoreFixture::Open(const std::string& backend) {
  static std::atomic<int> counter{0};
  auto f = std::make_unique<StoreFixture>();
  f->prefix_ = "/t" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "/";
  if (backend == "sqlite") {
    f->dir_ = std::make_unique<TempDir>("store");
    f->sqlite_path_ = f->dir_->File("kiso.db");
    KISO_RETURN_IF_ERROR(f->Reopen());
    return f;
  }
  if (backend == "etcd") {
    KISO_ASSIGN_OR_RETURN(EtcdProcess * etcd, SharedEtcd());
    KISO_ASSIGN_OR_RETURN(f->store_, kiso::store::OpenStore(etcd->url()));
    return f;
  }
  return kiso::Status(kiso::Code::kInvalidArgument, "unknown backend " + backend);
}

kiso::Status StoreFixture::Reopen() {
  if (sqlite_path_.empty())
    return kiso::Status(kiso::Code::kInvalidArgument, "reopen: sqlite only");
  store_.reset();
  KISO_ASSIGN_OR_RETURN(store_, kiso::store::OpenStore("sqlite://" + sqlite_path_));
  return kiso::Status::Ok();
}

}  // namespace kiso::testing
