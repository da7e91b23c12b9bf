// PodGcController: kube-controller-manager's pod garbage collector. Every
// pass (each 20 s, and when a node goes) it force-deletes (grace 0): the
// oldest terminated pods (Succeeded or Failed) beyond `terminated_threshold`
// (--terminated-pod-gc-threshold, 12,500 as upstream; 0 turns that off);
// pods bound to a node that has not existed for `quarantine` (40 s, as
// upstream: a node may be about to register) — marked Failed first, with a
// DisruptionTarget condition saying why, as upstream; and pods being deleted
// that were never scheduled (no kubelet will finish them).
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "controller/controller.h"

namespace kiso::controller {

struct PodGcOptions {
  int64_t terminated_threshold = 12500;
  std::chrono::milliseconds period{20000};
  std::chrono::milliseconds quarantine{40000};
};

class PodGcController : public Controller {
 public:
  PodGcController(client::Client* client, PodGcOptions options,
                  client::SharedInformers* shared = nullptr);
  ~PodGcController() override { Stop(); }

  // The one key a pass runs under (tests reconcile it directly).
  static constexpr std::string_view kKey = "pod-gc";

 protected:
  Status Reconcile(const std::string& key) override;
  std::optional<boost::json::value> Subject(const std::string&) override { return std::nullopt; }

 private:
  PodGcOptions options_;
  client::Informer* pods_ = nullptr;
  client::Informer* nodes_ = nullptr;
  // Node name → when a pass first found it missing. Only the one worker
  // (Reconcile) touches it.
  std::map<std::string, std::chrono::steady_clock::time_point> missing_since_;
};

}  // namespace kiso::controller
