// SharedInformers: one informer per kind for every in-process controller
// (upstream's SharedInformerFactory), so a pod is decoded and cached once,
// not once per controller. Controllers add handlers before Start; a handler
// added later first receives the cached objects as adds.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "client/informer.h"

namespace kiso::client {

class SharedInformers {
 public:
  explicit SharedInformers(Client* client) : client_(client) {}
  ~SharedInformers() { Stop(); }
  SharedInformers(const SharedInformers&) = delete;
  SharedInformers& operator=(const SharedInformers&) = delete;

  // The informer for `type`, created (not started) on first use.
  Informer* For(const api::ResourceType& type);
  // Starts every informer not started yet. Idempotent.
  void Start();
  // Stops them all. REQUIRES: every handler is removed or may still be called until this returns.
  void Stop();

 private:
  Client* client_;
  std::mutex mu_;
  std::map<const api::ResourceType*, std::unique_ptr<Informer>> informers_;
};

}  // namespace kiso::client
