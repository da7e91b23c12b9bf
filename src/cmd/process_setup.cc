#include "cmd/process_setup.h"

#include <execinfo.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "common/file.h"

namespace kiso::cmd {

namespace {

void OnFatalSignal(int sig) {
  void* frames[64];
  int n = backtrace(frames, 64);
  const char header[] = "kiso: fatal signal; stack:\n";
  (void)!write(STDERR_FILENO, header, sizeof(header) - 1);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void SetUpProcess() {
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) signal(sig, OnFatalSignal);
  signal(SIGPIPE, SIG_IGN);
  // Logs to stderr: stdout is what a command prints (a token, a kubeconfig,
  // an image list), and may be captured. The default logger's own unnamed
  // place, so its lines look as before.
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "", std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
}

sigset_t BlockStopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return stop;
}

std::string Beside(const std::string& name, const std::string& build_tree_path) {
  std::filesystem::path dir = ExecutableDir();
  std::filesystem::path beside = dir / name;
  if (std::filesystem::exists(beside)) return beside.string();
  return (dir / build_tree_path).lexically_normal().string();
}

}  // namespace kiso::cmd
