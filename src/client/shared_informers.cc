#include "client/shared_informers.h"

namespace kiso::client {

Informer* SharedInformers::For(const api::ResourceType& type) {
  std::lock_guard lock(mu_);
  auto& informer = informers_[&type];
  if (!informer) informer = std::make_unique<Informer>(client_, &type, nullptr);
  return informer.get();
}

void SharedInformers::Start() {
  std::lock_guard lock(mu_);
  for (auto& [type, informer] : informers_) informer->Start();
}

void SharedInformers::Stop() {
  std::lock_guard lock(mu_);
  for (auto& [type, informer] : informers_) informer->Stop();
}

}  // namespace kiso::client
