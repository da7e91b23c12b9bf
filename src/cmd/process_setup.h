// What kiso's executables (kiso, kiso-agent) set up the same way: a stack on
// fatal signals, SIGPIPE ignored, logs on stderr, stop signals taken by sigwait, and where
// their sibling executables are.
#pragma once

#include <csignal>
#include <string>

namespace kiso::cmd {

// Stack to stderr on a crash; SIGPIPE ignored (a peer that went away — a pipe
// to an exec'd process, an attach — is an error where it happens, never a
// reason for the process to die); logs to stderr.
void SetUpProcess();
// Blocks SIGINT/SIGTERM for every thread and returns the set to sigwait on.
sigset_t BlockStopSignals();
// The executable `name` beside this one; in a build tree, `build_tree_path`
// relative to this one's directory when it is not beside it.
std::string Beside(const std::string& name, const std::string& build_tree_path);

}  // namespace kiso::cmd
