// EtcdStore: the Store on a real etcd v3 cluster, through etcd's own gRPC API
// (KV, Watch, Lease). etcd provides the MVCC semantics natively; this class
// translates requests and errors, and feeds each watch stream into a
// WatchChannel so slow watchers behave as on every other backend.
//
// CAP class "CP": Raft-replicated; linearizable reads (etcd's default, not
// serializable); unavailable without a quorum.
//
// Why gRPC rather than etcd's JSON gateway: the gateway re-encodes every key
// and value as base64 JSON and serves watches as long-polled HTTP/1.1 streams;
// gRPC multiplexes all calls and streams over one HTTP/2 connection with
// protobuf bodies, which is what etcd's own clients (and kube-apiserver) use.
//
// The class lives in a plugin, kiso-etcd.so, that OpenEtcdStore loads on the
// first etcd:// store a process opens: gRPC and its libraries (about 4 MB of
// a server's memory at idle, and their start-up work) are loaded only by
// processes that use etcd. The plugin binds to kiso's own code (Store,
// WatchChannel, Status) in the executable that loads it, which therefore
// exports its symbols (kiso_store's users link with -rdynamic).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "store/store.h"

namespace kiso::store {

struct EtcdOptions {
  std::string endpoints;                     // "host:port[,host:port...]"
  std::chrono::milliseconds timeout{10000};  // Per call.
};

// Loads kiso-etcd.so (beside the executable, else where the build put it) and
// opens an EtcdStore; Unavailable saying what is missing if it cannot load it.
Result<std::unique_ptr<Store>> OpenEtcdStore(const EtcdOptions& options);

class EtcdStore : public Store {
 public:
  using Options = EtcdOptions;

  // Connects and checks that etcd answers; Unavailable naming the endpoints if not.
  static Result<std::unique_ptr<EtcdStore>> Open(Options options);
  ~EtcdStore() override;

  std::string_view Backend() const override { return "etcd"; }
  CapClass Cap() const override;
  Result<Revision> CurrentRevision() override;
  Result<RangeResult> Range(const KeyRange& range, const RangeOptions& options) override;
  Result<TxnResponse> Txn(const TxnRequest& txn) override;
  Result<std::unique_ptr<Watch>> WatchRange(const KeyRange& range, Revision after,
                                            const WatchOptions& options) override;
  Result<LeaseId> GrantLease(std::chrono::seconds ttl) override;
  Status KeepAliveLease(LeaseId lease) override;
  Status RevokeLease(LeaseId lease) override;
  Status Compact(Revision revision) override;

 private:
  struct Impl;
  explicit EtcdStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// kiso-etcd.so's entry point, found by OpenEtcdStore with dlsym.
extern "C" void KisoOpenEtcdStore(const EtcdOptions* options, Result<std::unique_ptr<Store>>* out);

}  // namespace kiso::store
