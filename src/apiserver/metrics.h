// Metrics in the Prometheus text format (/metrics): requests by verb, resource
// and code with latency histograms (apiserver_request_total,
// apiserver_request_duration_seconds), open watches, and store latency.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace kiso::apiserver {

class Metrics {
 public:
  void ObserveRequest(const std::string& verb, const std::string& resource, int code,
                      std::chrono::nanoseconds latency);
  void ObserveStore(const std::string& operation, std::chrono::nanoseconds latency);
  void WatchOpened() { open_watches_.fetch_add(1); }
  void WatchClosed() { open_watches_.fetch_sub(1); }
  int64_t open_watches() const { return open_watches_.load(); }
  std::string Render() const;

 private:
  struct Histogram {
    std::vector<uint64_t> buckets;  // Cumulative at render time; per-bucket here.
    uint64_t count = 0;
    double sum = 0;
  };
  static const std::vector<double>& Bounds();
  static void Observe(Histogram& h, double seconds);

  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, Histogram> request_latency_;
  std::map<std::string, Histogram> store_latency_;
  std::atomic<int64_t> open_watches_{0};
};

// Counts a watch as open for its lifetime.
class WatchGauge {
 public:
  explicit WatchGauge(Metrics* m) : m_(m) {
    if (m_) m_->WatchOpened();
  }
  ~WatchGauge() {
    if (m_) m_->WatchClosed();
  }
  WatchGauge(const WatchGauge&) = delete;
  WatchGauge& operator=(const WatchGauge&) = delete;

 private:
  Metrics* m_;
};

}  // namespace kiso::apiserver
