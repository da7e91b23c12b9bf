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
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "store/store.h"

namespace kiso::store {

class EtcdStore : public Store {
 public:
  struct Options {
    std::string endpoints;                     // "host:port[,host:port...]"
    std::chrono::milliseconds timeout{10000};  // Per call.
  };

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

}  // namespace kiso::store
