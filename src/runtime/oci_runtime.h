// OciRuntime: RuntimeService over an OCI runtime's command line (runc or
// crun: create, start, state, kill, delete, exec), with a shim per container
// and one runtime per RuntimeClass handler (the default's, and any further
// ones: a container runs with its sandbox's handler),
// and sandboxes whose network, IPC and UTS namespaces are held by bind mounts
// (no pause container). State lives under `root`, so a restarted agent finds
// its sandboxes and containers again.
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/process.h"
#include "runtime/runtime.h"

namespace kiso::runtime {

struct OciRuntimeOptions {
  // State: sandboxes/, containers/, state/ (the default runtime's), and
  // state-<handler>/ for each further handler.
  std::string root;
  std::string runtime = "runc";  // The default handler: "runc" or "crun", found in PATH.
  // Further handlers, each named as its runtime ("crun" beside a default
  // runc): RuntimeClasses name them. One that cannot work here (not
  // installed, a host it refuses) is left out, with a warning saying why.
  // "wasm" is kiso's own: WASI modules run by `wasm_binary` (kiso-wasm, an
  // OCI runtime's command line over a WebAssembly engine).
  std::vector<std::string> extra_handlers;
  std::string shim_binary;  // The kiso-shim executable.
  std::string wasm_binary;  // The kiso-wasm executable (handler "wasm").
  // Container log rotation (the kubelet's containerLogMaxSize/MaxFiles).
  int64_t container_log_max_size = int64_t{10} << 20;
  int container_log_max_files = 5;
  // The cgroup every container's cgroup is made under (/<parent>/<id>). Tests
  // take one of their own, so that removing it once empty never races another
  // runtime creating a container under the shared one.
  std::string cgroup_parent = "kiso";
};

class OciRuntime : public RuntimeService {
 public:
  // Fails with a message naming the cause when the runtime cannot work here
  // (not installed; crun on a hybrid cgroup v1/v2 layout, which it refuses).
  static Result<std::unique_ptr<OciRuntime>> Create(OciRuntimeOptions options);

  std::string Version() const override { return version_; }
  std::vector<std::string> Handlers() const override;
  Result<Sandbox> RunPodSandbox(const SandboxConfig& config) override;
  Status StopPodSandbox(const std::string& sandbox_id) override;
  Status RemovePodSandbox(const std::string& sandbox_id) override;
  Result<std::string> CreateContainer(const Sandbox& sandbox,
                                      const ContainerConfig& config) override;
  Status StartContainer(const std::string& id) override;
  Status StopContainer(const std::string& id, std::chrono::seconds grace) override;
  Status RemoveContainer(const std::string& id) override;
  Result<ContainerStatus> GetStatus(const std::string& id) override;
  Result<ContainerStats> Stats(const std::string& id) override;
  std::vector<std::string> ListContainers() override;
  Result<AttachedInput> AttachStdin(const std::string& id) override;
  Result<ChildProcess> Exec(const std::string& id, const std::vector<std::string>& cmd,
                            bool with_stdin, bool tty) override;
  Result<ExecResult> ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                              std::chrono::seconds timeout) override;

  std::vector<SandboxInfo> ListPodSandboxes() override;
  // Sandbox IDs present under root (for re-adoption and cleanup after a crash).
  std::vector<std::string> ListSandboxes();
  // The sandbox a container belongs to.
  std::string SandboxOf(const std::string& container_id);

 private:
  explicit OciRuntime(OciRuntimeOptions options) : options_(std::move(options)) {}
  // One handler's runtime: its executable and its state directory.
  struct Binary {
    std::string name;  // The handler's name, the runtime's too.
    std::string path;
    std::string state;
    bool exec = true;  // Whether it runs processes beside a container's (a wasm module: no).
    // Whether each container gets a root file system of its own (an overlay on
    // the image's). A wasm module has none: its runtime reads the module from
    // the image's shared root, read-only, and writes only to the pod's volumes.
    bool own_root = true;
    // Whether its containers are made when they start, in one runtime process
    // (`run --detach`: runc, crun) rather than two (`create`, then `start`).
    // Until then a container is its bundle, reported created.
    bool create_at_start = false;
  };
  Result<Binary> Find(const std::string& name, const std::string& state) const;
  // The handler of that name this runtime runs, or null.
  const Binary* HandlerNamed(std::string_view name) const;
  std::string Bundle(const std::string& id) const;
  // The runtime container `id` was made with (its meta.json's handler).
  const Binary& BinaryOf(const std::string& id) const;
  // Whether container `id`'s shim was started (its runtime asked to create it).
  bool Spawned(const std::string& id) const;
  Status Start(const std::string& id);  // StartContainer's work.
  // Runs container `id`'s runtime with `args`.
  Result<CommandResult> Runtime(const std::string& id, std::vector<std::string> args,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Starts the container's shim, which creates the container (and with
  // `start` starts it too); returns once it has, or with the cause.
  Status Spawn(const std::string& id, const Binary& binary, const ContainerConfig& config,
               bool start = false);

  OciRuntimeOptions options_;
  std::vector<Binary> binaries_;  // The default handler's first.
  std::string version_;
  std::mutex starting_mu_;
  // Guarded by starting_mu_: containers a StartContainer is starting now, whose
  // status is "created" without asking the runtime (nothing was left half done).
  std::set<std::string> starting_;
};

// What `kiso node reset` does to one node's runtime state under `root` (an
// OciRuntime's, its default handler `runtime`: "runc", "crun"; each further
// handler's runtime is named by its state-<handler> directory): every container and its
// processes killed (runc's state, the shims whose bundles are here, and
// whatever is left in each container's cgroup), the containers' cgroups
// removed, and the state directories emptied. Mounts are the caller's
// (UnmountBelow). Appends what it removed, and what it could not, to the lists.
void ResetContainers(const std::string& root, const std::string& runtime,
                     std::vector<std::string>* removed, std::vector<std::string>* failed);
// Unmounts (lazily, deepest first) every mount point at or below `dir`.
void UnmountBelow(const std::string& dir, std::vector<std::string>* removed,
                  std::vector<std::string>* failed);
// Every mount point of this mount namespace (/proc/self/mountinfo, unescaped).
std::vector<std::string> MountPoints();
// The cgroup directories of a container's cgroup `path` ("/kiso/<id>") in
// every hierarchy (/sys/fs/cgroup/<h>/kiso/<id>).
std::vector<std::string> ContainerCgroups(const std::string& path);
// Container `id`'s cgroup path: its bundle's (root/containers/<id>/config.json,
// linux.cgroupsPath), or "/kiso/<id>" when the bundle is gone.
std::string ContainerCgroupPath(const std::string& root, const std::string& id);

// Makes a hybrid cgroup host (cgroup v1 controllers, cgroup2 at
// /sys/fs/cgroup/unified) one crun runs on, as systemd's hybrid hosts are:
// every controller cgroup2 still lists (hugetlb, here) mounted as a v1
// hierarchy at /sys/fs/cgroup/<controller>, each change logged. Nothing on
// other hosts. Unavailable when cgroup2 still lists a controller after.
// OciRuntime::Create does it for crun. Needs root.
Status PrepareHostForCrun();

// Sandbox namespaces: new network, IPC and UTS namespaces bind-mounted at
// dir/{net,ipc,uts}, with the host name set and the loopback interface up.
Result<Sandbox> CreateSandboxNamespaces(const std::string& id, const std::string& dir,
                                        const std::string& hostname);
Status RemoveSandboxNamespaces(const std::string& dir);
// Whether each of the sandbox's namespace files is a bind-mounted namespace.
bool SandboxNamespacesHeld(const Sandbox& sandbox);

}  // namespace kiso::runtime
