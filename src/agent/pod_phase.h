// The pod lifecycle as a state machine (seed 07.7.1): the phase computed from
// the containers' states (the kubelet's getPhase), and the transitions the
// agent may make. Succeeded and Failed are terminal; anything else the agent
// would do is a bug, refused and logged.
#pragma once

#include <string>
#include <string_view>

namespace kiso::agent {

// App containers of a pod by state.
struct ContainerTally {
  int total = 0;
  int waiting = 0;  // Never started yet (creating, pulling…).
  int running = 0;
  int ready = 0;    // Running and ready (its readiness probe, if any, passes).
  int stopped = 0;  // Terminated, or waiting to restart after a termination.
  int succeeded = 0;
  int failed = 0;
};

// `initialized`: every init container succeeded; `init_failed`: one failed for good.
std::string PodPhase(const ContainerTally& app, bool initialized, bool init_failed,
                     std::string_view restart_policy);

// Whether the agent may move a pod from phase `from` ("" = not reported yet) to `to`.
bool AllowedPhaseTransition(std::string_view from, std::string_view to);

}  // namespace kiso::agent
