// Probes (liveness, readiness, startup) as the kubelet runs them: exec in the
// container, httpGet (2xx and 3xx succeed) or tcpSocket against the pod IP.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <string>

#include "runtime/runtime.h"

namespace kiso::agent {

struct ProbeResult {
  bool success = false;
  std::string message;  // Why it failed, as the Unhealthy event says it.
};

// Runs `probe` (a Probe object) once for container `c` (its spec) with
// runtime ID `id` in a pod at `pod_ip`.
ProbeResult RunProbe(const boost::json::value& probe, const boost::json::value& c,
                     runtime::RuntimeService* runtime, const std::string& id,
                     const std::string& pod_ip);

// Runs a lifecycle hook (a LifecycleHandler: exec or httpGet) with `timeout`.
ProbeResult RunHook(const boost::json::value& handler, const boost::json::value& c,
                    runtime::RuntimeService* runtime, const std::string& id,
                    const std::string& pod_ip, std::chrono::seconds timeout);

// A probe's timing and thresholds, with Kubernetes' defaults.
struct ProbeTiming {
  std::chrono::seconds initial_delay{0};
  std::chrono::seconds period{10};
  std::chrono::seconds timeout{1};
  int success_threshold = 1;
  int failure_threshold = 3;
};
ProbeTiming TimingOf(const boost::json::value& probe);

}  // namespace kiso::agent
