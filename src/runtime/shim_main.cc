// kiso-shim: the per-container shim as its own small executable (no TLS,
// gRPC or SQLite mapped), started by OciRuntime for every container.
#include <CLI/CLI.hpp>

#include "runtime/shim.h"

int main(int argc, char** argv) {
  CLI::App app{"kiso-shim: holds one container's stdio, logs and exit status (started by kiso)"};
  kiso::runtime::ShimOptions o;
  app.add_option("--id", o.id)->required();
  app.add_option("--bundle", o.bundle)->required();
  app.add_option("--runtime-path", o.runtime_path)->required();
  app.add_option("--runtime-root", o.runtime_root)->required();
  app.add_option("--log", o.log_path)->required();
  app.add_option("--cgroup", o.cgroup);
  app.add_option("--sync-fd", o.sync_fd);
  app.add_flag("--stdin", o.stdin_open, "Keep the container's stdin open for attach");
  app.add_flag("--stdin-once", o.stdin_once, "Close it when the first attach ends");
  app.add_flag("--tty", o.tty, "The container has a terminal (config.json process.terminal)");
  app.add_flag("--start", o.start, "Start the container too (the runtime's run --detach)");
  app.add_option("--log-max-size", o.log_max_size, "Rotate the log past this many bytes")
      ->capture_default_str();
  app.add_option("--log-max-files", o.log_max_files, "Log files kept, the current one included")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return kiso::runtime::RunShim(o);
}
