// A volume's files kept as the kubelet's atomic writer keeps them, so that a
// ConfigMap, Secret or downward API volume can change under a running
// container without it ever reading a mix of old and new files:
//
//   DIR/..2026_12_03_18_00_00.Ab12Cd/   the payload (every file, its modes)
//   DIR/..data -> ..2026_12_03_18_00_00.Ab12Cd
//   DIR/KEY -> ..data/KEY               one link per top-level name
//
// An update writes a new payload directory, swaps `..data` to it with one
// rename, fixes the top-level links and removes the old payload. Readers that
// open files through `..data` (or the links) see the old set or the new one.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>

#include "common/status.h"

namespace kiso::agent {

struct VolumeFile {
  std::string content;
  int mode = 0644;
};
// Relative path (with subdirectories) → file.
using VolumeFiles = std::map<std::string, VolumeFile>;

// Makes DIR hold exactly `files`. With `group` (the pod's fsGroup), every file
// and directory belongs to it and is group-readable (group-writable when the
// owner may write; directories setgid), as the kubelet's volume ownership
// does. Returns whether anything changed: a payload equal to the current one
// (contents, modes, group) is left as it is. A path that is absolute, empty,
// or has a component that starts with ".." is refused before anything is
// written.
Result<bool> WriteVolumeAtomically(const std::string& dir, const VolumeFiles& files,
                                   std::optional<gid_t> group = std::nullopt);

}  // namespace kiso::agent
