#include "apiserver/metrics.h"

#include <fmt/format.h>

namespace kiso::apiserver {

const std::vector<double>& Metrics::Bounds() {
  static const auto& bounds = *new std::vector<double>{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return bounds;
}

void Metrics::Observe(Histogram& h, double seconds) {
  if (h.buckets.empty()) h.buckets.assign(Bounds().size(), 0);
  for (size_t i = 0; i < Bounds().size(); ++i) {
    if (seconds <= Bounds()[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::ObserveRequest(const std::string& verb, const std::string& resource, int code,
                             std::chrono::nanoseconds latency) {
  std::lock_guard lock(mu_);
  ++requests_[{verb, resource, code}];
  Observe(request_latency_[{verb, resource}], std::chrono::duration<double>(latency).count());
}

void Metrics::ObserveStore(const std::string& operation, std::chrono::nanoseconds latency) {
  std::lock_guard lock(mu_);
  Observe(store_latency_[operation], std::chrono::duration<double>(latency).count());
}

namespace {

void RenderHistogram(std::string& out, const std::string& name, const std::string& labels,
                     const std::vector<double>& bounds, const std::vector<uint64_t>& buckets,
                     uint64_t count, double sum) {
  uint64_t cumulative = 0;
  std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += buckets.empty() ? 0 : buckets[i];
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds[i], cumulative);
  }
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, count);
  out += fmt::format("{}_sum{{{}}} {}\n", name, labels, sum);
  out += fmt::format("{}_count{{{}}} {}\n", name, labels, count);
}

}  // namespace

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  out += "# HELP apiserver_request_total Requests by verb, resource and HTTP code.\n";
  out += "# TYPE apiserver_request_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [verb, resource, code] = key;
    out += fmt::format("apiserver_request_total{{verb=\"{}\",resource=\"{}\",code=\"{}\"}} {}\n",
                       verb, resource, code, n);
  }
  out += "# HELP apiserver_request_duration_seconds Request latency by verb and resource.\n";
  out += "# TYPE apiserver_request_duration_seconds histogram\n";
  for (const auto& [key, h] : request_latency_) {
    RenderHistogram(out, "apiserver_request_duration_seconds",
                    fmt::format("verb=\"{}\",resource=\"{}\"", key.first, key.second), Bounds(),
                    h.buckets, h.count, h.sum);
  }
  out += "# HELP apiserver_registered_watchers Open watch streams.\n";
  out += "# TYPE apiserver_registered_watchers gauge\n";
  out += fmt::format("apiserver_registered_watchers {}\n", open_watches_.load());
  out += "# HELP kiso_store_request_duration_seconds Store call latency by operation.\n";
  out += "# TYPE kiso_store_request_duration_seconds histogram\n";
  for (const auto& [op, h] : store_latency_) {
    RenderHistogram(out, "kiso_store_request_duration_seconds", fmt::format("operation=\"{}\"", op),
                    Bounds(), h.buckets, h.count, h.sum);
  }
  return out;
}

}  // namespace kiso::apiserver
