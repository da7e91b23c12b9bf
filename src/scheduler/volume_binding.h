// Which PersistentVolume may satisfy which PersistentVolumeClaim, and where:
// the rules the PV controller binds by and the scheduler's VolumeBinding
// plugin places pods by (upstream's pkg/controller/volume/persistentvolume
// and its scheduler plugin share them the same way).
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "scheduler/framework.h"

namespace kiso::scheduler {

// A quantity in bytes (`10Gi`, `500M`); 0 when absent or unreadable.
int64_t StorageBytes(const boost::json::value* quantity);
// A volume's required node affinity (none: any node).
std::vector<SelectorTerm> VolumeNodeAffinity(const boost::json::value& volume);

// Whether `volume` can satisfy `claim`: not bound to another claim, the same
// class and volume mode, every access mode the claim asks for, at least the
// storage it requests, the labels its selector asks for; and, with `node`,
// a node affinity that node matches.
bool VolumeSatisfies(const boost::json::value& volume, const boost::json::value& claim,
                     const NodeInfo* node);
// The volume to bind `claim` to: one already naming the claim, else the
// smallest that satisfies it; null when none does.
const boost::json::value* BestVolumeFor(const boost::json::value& claim,
                                        const std::vector<boost::json::value>& volumes,
                                        const NodeInfo* node);

}  // namespace kiso::scheduler
