#include "support/etcd_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "store/etcd_store.h"

namespace kiso::testing {

bool EtcdAvailable() { return access("/usr/bin/etcd", X_OK) == 0; }

kiso::Result<std::unique_ptr<EtcdProcess>> EtcdProcess::Start() {
  if (!EtcdAvailable())
    return kiso::Status(kiso::Code::kUnavailable, "/usr/bin/etcd not installed");
  std::unique_ptr<EtcdProcess> etcd(new EtcdProcess());
  etcd->dir_ = std::make_unique<TempDir>("etcd");
  int client_port = FreeLoopbackPort();
  int peer_port = FreeLoopbackPort();
  std::string client = "http://127.0.0.1:" + std::to_string(client_port);
  std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
  etcd->endpoint_ = "127.0.0.1:" + std::to_string(client_port);
  std::string log = etcd->dir_->File("etcd.log");
  // Short heartbeat/election intervals: a one-member cluster elects itself at
  // once, and etcd's minimum lease TTL (1.5 election timeouts) drops to 1 s.
  etcd->process_ =
      std::make_unique<Subprocess>(std::vector<std::string>{"/usr/bin/etcd",
                                                            "--name",
                                                            "kiso-test",
                                                            "--data-dir",
                                                            etcd->dir_->File("data"),
                                                            "--listen-client-urls",
                                                            client,
                                                            "--advertise-client-urls",
                                                            client,
                                                            "--listen-peer-urls",
                                                            peer,
                                                            "--initial-advertise-peer-urls",
                                                            peer,
                                                            "--initial-cluster",
                                                            "kiso-test=" + peer,
                                                            "--heartbeat-interval",
                                                            "20",
                                                            "--election-timeout",
                                                            "200",
                                                            "--logger",
                                                            "zap",
                                                            "--log-outputs",
                                                            "stderr"},
                                   false, log);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  kiso::Status last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto store = kiso::store::OpenEtcdStore(
        {.endpoints = etcd->endpoint_, .timeout = std::chrono::milliseconds(1000)});
    if (store.ok()) return etcd;
    last = store.status();
    if (waitpid(etcd->process_->pid(), nullptr, WNOHANG) != 0) break;  // It exited.
  }
  std::ifstream in(log);
  std::stringstream tail;
  tail << in.rdbuf();
  std::string text = tail.str();
  if (text.size() > 2000) text = text.substr(text.size() - 2000);
  return kiso::MakeStatus(kiso::Code::kUnavailable, "etcd did not start ({}); log: {}",
                          last.ToString(), text);
}

EtcdProcess::~EtcdProcess() {
  if (process_ && process_->running()) process_->Kill(SIGKILL);
}

}  // namespace kiso::testing
