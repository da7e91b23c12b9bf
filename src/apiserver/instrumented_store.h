// InstrumentedStore: a Store decorator that records each call's latency in
// the API server's metrics (kiso_store_request_duration_seconds).
#pragma once

#include <chrono>

#include "apiserver/metrics.h"
#include "store/store.h"

namespace kiso::apiserver {

class InstrumentedStore : public store::Store {
 public:
  InstrumentedStore(store::Store* inner, Metrics* metrics) : inner_(inner), metrics_(metrics) {}

  std::string_view Backend() const override { return inner_->Backend(); }
  store::CapClass Cap() const override { return inner_->Cap(); }
  Result<store::Revision> CurrentRevision() override {
    return Timed("revision", [&] { return inner_->CurrentRevision(); });
  }
  Result<store::RangeResult> Range(const store::KeyRange& range,
                                   const store::RangeOptions& options) override {
    return Timed("range", [&] { return inner_->Range(range, options); });
  }
  Result<store::TxnResponse> Txn(const store::TxnRequest& txn) override {
    return Timed("txn", [&] { return inner_->Txn(txn); });
  }
  Result<std::unique_ptr<store::Watch>> WatchRange(const store::KeyRange& range,
                                                   store::Revision after,
                                                   const store::WatchOptions& options) override {
    return inner_->WatchRange(range, after, options);
  }
  Result<store::LeaseId> GrantLease(std::chrono::seconds ttl) override {
    return inner_->GrantLease(ttl);
  }
  Status KeepAliveLease(store::LeaseId lease) override { return inner_->KeepAliveLease(lease); }
  Status RevokeLease(store::LeaseId lease) override { return inner_->RevokeLease(lease); }
  Status Compact(store::Revision revision) override {
    return Timed("compact", [&] { return inner_->Compact(revision); });
  }

 private:
  template <typename F>
  auto Timed(const char* operation, F&& f) -> decltype(f()) {
    auto start = std::chrono::steady_clock::now();
    auto result = f();
    metrics_->ObserveStore(operation, std::chrono::steady_clock::now() - start);
    return result;
  }

  store::Store* inner_;
  Metrics* metrics_;
};

}  // namespace kiso::apiserver
