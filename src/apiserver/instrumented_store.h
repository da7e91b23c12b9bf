// InstrumentedStore: a Store decorator that records each call's latency in
// the API server's metrics (kiso_store_request_duration_seconds).
#pragma once

#include <chrono>

#include "apiserver/metrics.h"
#include "store/forwarding_store.h"

namespace kiso::apiserver {

class InstrumentedStore : public store::ForwardingStore {
 public:
  InstrumentedStore(store::Store* inner, Metrics* metrics)
      : ForwardingStore(inner), metrics_(metrics) {}

  Result<store::Revision> CurrentRevision() override {
    return Timed("revision", [&] { return ForwardingStore::CurrentRevision(); });
  }
  Result<store::RangeResult> Range(const store::KeyRange& range,
                                   const store::RangeOptions& options) override {
    return Timed("range", [&] { return ForwardingStore::Range(range, options); });
  }
  Result<store::TxnResponse> Txn(const store::TxnRequest& txn) override {
    return Timed("txn", [&] { return ForwardingStore::Txn(txn); });
  }
  Status Compact(store::Revision revision) override {
    return Timed("compact", [&] { return ForwardingStore::Compact(revision); });
  }

 private:
  template <typename F>
  auto Timed(const char* operation, F&& f) -> decltype(f()) {
    auto start = std::chrono::steady_clock::now();
    auto result = f();
    metrics_->ObserveStore(operation, std::chrono::steady_clock::now() - start);
    return result;
  }

  Metrics* metrics_;
};

}  // namespace kiso::apiserver
