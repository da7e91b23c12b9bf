#include "agent/pod_phase.h"

namespace kiso::agent {

std::string PodPhase(const ContainerTally& app, bool initialized, bool init_failed,
                     std::string_view restart_policy) {
  if (init_failed) return "Failed";
  if (!initialized || app.waiting > 0) return "Pending";
  if (app.running > 0) return "Running";
  if (app.total == 0 || app.stopped < app.total) return "Pending";
  // Every container has stopped.
  if (restart_policy == "Always") return "Running";  // They will be restarted.
  if (app.succeeded == app.total) return "Succeeded";
  if (restart_policy == "Never") return "Failed";
  return "Running";  // OnFailure: the failed ones restart.
}

bool AllowedPhaseTransition(std::string_view from, std::string_view to) {
  if (from == to) return true;
  if (from.empty())
    return to == "Pending" || to == "Running" || to == "Succeeded" || to == "Failed";
  if (from == "Pending") return to == "Running" || to == "Succeeded" || to == "Failed";
  if (from == "Running") return to == "Succeeded" || to == "Failed";
  return false;  // Succeeded and Failed are terminal.
}

}  // namespace kiso::agent
