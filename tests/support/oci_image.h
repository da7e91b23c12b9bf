// Test images made on the spot: an OCI image layout tar from a directory, and
// a busybox root file system from Debian's busybox-static (applets as links).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kiso::testing {

// Writes `data` to `path`, creating parent directories.
void WriteFile(const std::string& path, std::string_view data);
// The whole file ("" if missing).
std::string ReadFile(const std::string& path);

// Packs `rootfs` as one gzip layer into an OCI image layout tar at `out`, named
// `ref_name` (org.opencontainers.image.ref.name), with Cmd `cmd`. `work` is
// scratch space. Returns `out`.
std::string BuildOciArchive(const std::string& work, const std::string& rootfs,
                            const std::string& ref_name, const std::vector<std::string>& cmd,
                            const std::string& out);

// Fills `dir` with /bin/busybox (static) and a link per applet, plus /etc,
// /tmp and /root. Returns false if busybox-static is not installed.
bool MakeBusyboxRootfs(const std::string& dir);

// Copies the program at `path` into the root file system `dir` at the same
// path, with every shared library `ldd` names for it. False if it is missing.
bool AddProgram(const std::string& dir, const std::string& path);

}  // namespace kiso::testing
