// `kiso node reset` (K3s' killall script's role): removes everything kiso's
// nodes made on this machine — the agent process, containers and their shims,
// mounts, network namespaces, veths and bridges, cgroups, CNI state and the
// kernel rules — and says what it removed.
//
// Each node's agent records itself when it starts, in /run/kiso/nodes (a
// tmpfs: a reboot ends what it describes), so a reset finds a node's bridge
// and runtime even when the data directory's owner is long gone; containers'
// shims and mounts name their node's directory too, so strays are found
// without a record.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiso::agent {

struct NodeRecord {
  std::string agent_dir;  // DATA_DIR/agent: runtime/, cni/, pods/.
  std::string bridge;     // The CNI bridge.
  std::string runtime;    // "runc", "crun".
  int pid = 0;            // The agent's process (kiso server or kiso-agent).
};

// Records a node that starts on this machine (replacing an older record of its directory).
Status WriteNodeRecord(const NodeRecord& record);
std::vector<NodeRecord> ReadNodeRecords();

struct ResetReport {
  std::vector<std::string> removed;
  std::vector<std::string> failed;  // What could not be removed, and why.
};

// Resets the node whose data directory (as given to `kiso server` or `kiso
// agent`) is `data_dir`; without one, every node on this machine, and
// afterwards what nodes share (CNI rules, kiso's cgroup parents, /run/kiso).
ResetReport ResetNodes(const std::optional<std::string>& data_dir);

}  // namespace kiso::agent
