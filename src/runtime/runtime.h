// RuntimeService: the container runtime tuple {daemon, shim, image,
// application} (seed 07.2.1) behind the CRI's verbs (07.3.1). A pod sandbox
// holds the namespaces its containers share; a container runs one process
// from an image's root file system. Implementations: OciRuntime (runc, crun).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/process.h"
#include "common/status.h"

namespace kiso::runtime {

struct SandboxConfig {
  std::string name;  // Pod name, also the sandbox's host name unless `hostname` says otherwise.
  std::string ns;
  std::string uid;
  std::string hostname;  // The pod's spec.hostname; empty: `name`.
  // The RuntimeClass handler its containers run with (CRI's runtime_handler);
  // empty: the runtime's default. One the runtime lacks is refused.
  std::string runtime_handler;
};

struct Sandbox {
  std::string id;
  std::string netns_path;  // Bind-mounted namespace files the containers join.
  std::string ipcns_path;
  std::string utsns_path;
};

struct Mount {
  std::string container_path;
  std::string host_path;
  bool read_only = false;
};

// securityContext.seccompProfile.type.
enum class Seccomp {
  kUnconfined,
  kRuntimeDefault,  // The runtime's profile: see oci_spec.h.
  kLocalhost,       // A profile file on the node, in the OCI format.
};

struct ContainerConfig {
  std::string name;
  int attempt = 0;    // Restarts so far: the CRI's metadata.attempt.
  std::string image;  // For status only; the rootfs below is what runs.
  std::string image_rootfs;
  std::vector<std::string> args;  // Resolved argv (entrypoint + cmd, or command + args).
  std::vector<std::string> env;   // "K=V".
  std::string working_dir = "/";
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;  // supplementalGroups and fsGroup.
  bool read_only_rootfs = false;
  bool privileged = false;  // All capabilities, devices, /sys rw, no seccomp.
  // Capability names as Kubernetes spells them ("NET_ADMIN"; "ALL"): the
  // default set less `drop_caps`, plus `add_caps`.
  std::vector<std::string> add_caps;
  std::vector<std::string> drop_caps;
  bool no_new_privileges = false;  // allowPrivilegeEscalation: false.
  Seccomp seccomp = Seccomp::kRuntimeDefault;
  std::string seccomp_profile;  // kLocalhost: the profile's JSON (OCI LinuxSeccomp).
  int64_t cpu_shares = 0;       // From requests.cpu (0: runtime default).
  int64_t cpu_quota_us = 0;     // From limits.cpu over a 100 ms period (0: none).
  int64_t memory_limit = 0;     // Bytes (0: none).
  std::vector<Mount> mounts;    // Volumes.
  std::string log_path;         // CRI-format log file the shim writes.
  bool stdin_open = false;      // spec.containers[].stdin: attach may write to it.
  bool stdin_once = false;      // …and its stdin closes when the first attach ends.
  bool tty = false;             // spec.containers[].tty: it runs on a terminal.
};

// How an attach reaches a container's input.
struct AttachedInput {
  int fd = -1;            // Writes reach the container's stdin.
  bool terminal = false;  // fd is the container's terminal: resize it too.
};

enum class ContainerState { kCreated, kRunning, kExited, kUnknown };

struct ContainerStatus {
  std::string id;
  std::string name;
  std::string sandbox_id;
  std::string image;
  std::string runtime;  // The OCI runtime running it ("runc", "crun"): its handler's.
  int attempt = 0;
  ContainerState state = ContainerState::kUnknown;
  int pid = 0;
  int exit_code = 0;
  std::string reason;       // Exited: "Completed", "Error", "OOMKilled".
  std::string started_at;   // RFC 3339.
  std::string finished_at;  // RFC 3339.
  std::string log_path;
};

struct ExecResult {
  int exit_code = 0;
  std::string stdout_data;
  std::string stderr_data;
};

// CPU time used so far and memory now, read at `at`.
struct ContainerStats {
  std::chrono::system_clock::time_point at;
  uint64_t cpu_ns = 0;              // usageCoreNanoSeconds.
  uint64_t memory_usage = 0;        // usageBytes.
  uint64_t memory_working_set = 0;  // usage less inactive file pages (what the OOM killer weighs).
};

class RuntimeService {
 public:
  virtual ~RuntimeService() = default;
  // The runtime's name and version ("runc 1.1.5").
  virtual std::string Version() const = 0;
  // The RuntimeClass handlers it runs (the default's first), as a node
  // reports them in status.runtimeHandlers.
  virtual std::vector<std::string> Handlers() const = 0;

  virtual Result<Sandbox> RunPodSandbox(const SandboxConfig& config) = 0;
  // Every sandbox on this node with the config it was made from, also those
  // a crash left half made (not ready: a namespace is missing; RemovePodSandbox
  // removes them), and those without a config (its name and uid empty).
  struct SandboxInfo {
    Sandbox sandbox;
    SandboxConfig config;
    bool ready = false;  // Every namespace is held.
  };
  virtual std::vector<SandboxInfo> ListPodSandboxes() = 0;
  // Stops every container of the sandbox; the namespaces stay until removal.
  virtual Status StopPodSandbox(const std::string& sandbox_id) = 0;
  // Removes the sandbox's containers and namespaces. Idempotent.
  virtual Status RemovePodSandbox(const std::string& sandbox_id) = 0;

  // Creates a container in the sandbox: it has not run (its process exists,
  // or, with a runtime that makes it as it starts, is made by StartContainer).
  virtual Result<std::string> CreateContainer(const Sandbox& sandbox,
                                              const ContainerConfig& config) = 0;
  virtual Status StartContainer(const std::string& id) = 0;
  // SIGTERM, then SIGKILL after `grace`. Idempotent on an exited container.
  virtual Status StopContainer(const std::string& id, std::chrono::seconds grace) = 0;
  virtual Status RemoveContainer(const std::string& id) = 0;
  virtual Result<ContainerStatus> GetStatus(const std::string& id) = 0;
  // Container IDs on this node, including exited ones not yet removed.
  virtual std::vector<std::string> ListContainers() = 0;
  // Starts `cmd` in the container with its streams on pipes (pods/exec), or
  // with `tty` on a terminal of its own (`kubectl exec -it`; resize it
  // through the result's tty_fd).
  virtual Result<ChildProcess> Exec(const std::string& id, const std::vector<std::string>& cmd,
                                    bool with_stdin, bool tty) = 0;
  // Where writes reach the stdin of the container's process (pods/attach):
  // a socket to its shim, or its terminal. Conflict when it was not created
  // with stdin_open or its stdin has closed.
  virtual Result<AttachedInput> AttachStdin(const std::string& id) = 0;
  virtual Result<ExecResult> ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                                      std::chrono::seconds timeout) = 0;
  // What a running container uses now (CRI's ContainerStats), from its cgroup.
  virtual Result<ContainerStats> Stats(const std::string& id) {
    return MakeStatus(Code::kNotFound, "no statistics for container {}", id);
  }
};

}  // namespace kiso::runtime
