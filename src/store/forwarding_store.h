// ForwardingStore: a Store that passes every call to another, for decorators
// to override only what they change (the API server's metrics, tests that
// hold a watch or act during a read).
#pragma once

#include "store/store.h"

namespace kiso::store {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store* inner) : inner_(inner) {}

  std::string_view Backend() const override { return inner_->Backend(); }
  CapClass Cap() const override { return inner_->Cap(); }
  Result<Revision> CurrentRevision() override { return inner_->CurrentRevision(); }
  Result<RangeResult> Range(const KeyRange& range, const RangeOptions& options) override {
    return inner_->Range(range, options);
  }
  Result<TxnResponse> Txn(const TxnRequest& txn) override { return inner_->Txn(txn); }
  Result<std::unique_ptr<Watch>> WatchRange(const KeyRange& range, Revision after,
                                            const WatchOptions& options) override {
    return inner_->WatchRange(range, after, options);
  }
  Result<LeaseId> GrantLease(std::chrono::seconds ttl) override { return inner_->GrantLease(ttl); }
  Status KeepAliveLease(LeaseId lease) override { return inner_->KeepAliveLease(lease); }
  Status RevokeLease(LeaseId lease) override { return inner_->RevokeLease(lease); }
  Status Compact(Revision revision) override { return inner_->Compact(revision); }

 private:
  Store* inner_;
};

}  // namespace kiso::store
