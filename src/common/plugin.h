// kiso's plugins: shared objects loaded on first use, so that a process maps
// a library (and pays for its pages and start-up work) only once it needs it:
// the etcd backend's gRPC (kiso-etcd.so), libarchive and its compressors for
// image layers (kiso-layers.so). A plugin binds to kiso's own code in the
// executable that loads it, which therefore exports its symbols (kiso_common's
// users link with -rdynamic); its entry points are extern "C" functions.
#pragma once

#include <string>

#include "common/status.h"

// Marks a plugin's entry point. A plugin is built with hidden visibility
// (CXX_VISIBILITY_PRESET hidden): its own code binds to itself, never to a
// function of the same name in the executable, and only its entries show.
#define KISO_PLUGIN_ENTRY extern "C" __attribute__((visibility("default")))

namespace kiso {

// The address of `symbol` in plugin `file` ("kiso-etcd.so"), loaded once per
// process: from beside the executable (an installed kiso), else from `built`,
// where this build tree put it (tests and benchmarks run from there). The
// error is Unavailable and says, for each place, why it would not do.
Result<void*> PluginSymbol(const std::string& file, const std::string& built, const char* symbol);

}  // namespace kiso
