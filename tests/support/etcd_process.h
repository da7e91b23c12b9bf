// A real etcd server (Debian's etcd-server package) for tests and benchmarks:
// a single member on 127.0.0.1 with free ports and a temporary data dir,
// stopped and removed when the object goes away.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace kiso::testing {

class EtcdProcess {
 public:
  // Starts etcd and waits (with a deadline) until it serves requests.
  static kiso::Result<std::unique_ptr<EtcdProcess>> Start();
  ~EtcdProcess();

  // "127.0.0.1:PORT", for etcd://.
  const std::string& endpoint() const { return endpoint_; }
  std::string url() const { return "etcd://" + endpoint_; }
  pid_t pid() const { return process_->pid(); }

 private:
  EtcdProcess() = default;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Subprocess> process_;
  std::string endpoint_;
};

// Whether an etcd binary is installed.
bool EtcdAvailable();

}  // namespace kiso::testing
