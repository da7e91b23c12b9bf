#include "client/informer.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "common/recover.h"

namespace kiso::client {

namespace json = boost::json;

namespace {

using api::KeyOf;

}  // namespace

Informer::Informer(Client* client, const api::ResourceType* type, Handler handler)
    : client_(client), type_(type) {
  if (handler) handlers_.emplace(next_handler_++, std::move(handler));
}

int Informer::AddHandler(Handler handler) {
  std::lock_guard handlers_lock(handlers_mu_);
  if (started_) {
    for (const auto& obj : Items()) handler(nullptr, *obj, false);
  }
  handlers_.emplace(next_handler_, std::move(handler));
  return next_handler_++;
}

void Informer::RemoveHandler(int id) {
  std::lock_guard handlers_lock(handlers_mu_);
  handlers_.erase(id);
}

void Informer::Dispatch(const json::value* old, const json::value& obj, bool deleted) {
  std::lock_guard handlers_lock(handlers_mu_);
  for (auto& [id, handler] : handlers_) {
    // A handler that throws on an odd object must not end the informer's
    // thread (nor the process): the others still hear of it.
    try {
      handler(old, obj, deleted);
    } catch (...) {
      ReportRecovered(fmt::format("informer {}: a handler on {}/{}", type_->plural,
                                  api::GetString(obj, {"metadata", "namespace"}),
                                  api::GetString(obj, {"metadata", "name"})),
                      CurrentExceptionMessage());
    }
  }
}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  {
    std::lock_guard handlers_lock(handlers_mu_);
    if (started_) return;
    started_ = true;
  }
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (current_) current_->Cancel();
  }
  synced_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Informer::WaitForSync(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(mu_);
  return synced_cv_.wait_until(lock, deadline, [&] { return synced_.load(); });
}

std::optional<json::value> Informer::Get(const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = objects_.find(ns + "/" + name);
  if (it == objects_.end()) return std::nullopt;
  return *it->second;
}

std::vector<Informer::Object> Informer::Items() const {
  std::lock_guard lock(mu_);
  std::vector<Object> out;
  out.reserve(objects_.size());
  for (const auto& [k, v] : objects_) out.push_back(v);
  return out;
}

std::vector<json::value> Informer::List() const {
  std::vector<Object> items = Items();  // Copied outside the lock.
  std::vector<json::value> out;
  out.reserve(items.size());
  for (const auto& v : items) out.push_back(*v);
  return out;
}

bool Informer::ListOnce(std::string* resource_version) {
  ListOptions list_options;
  list_options.field_selector = field_selector_;
  auto list = client_->List(*type_, "", list_options);
  if (!list.ok()) {
    spdlog::warn("informer {}: list: {}", type_->plural, list.status().ToString());
    return false;
  }
  std::map<std::string, Object> fresh;
  if (auto* items = list->is_object() ? list->get_object().if_contains("items") : nullptr;
      items && items->is_array()) {
    for (auto& item : items->get_array()) {
      if (!item.is_object()) continue;
      json::value obj = std::move(item);  // The list is ours: its items move, not copy.
      api::DropManagedFields(obj);        // What informers keep (see informer.h).
      // List items carry no kind; restore it so handlers see complete objects.
      obj.get_object()["kind"] = type_->kind;
      obj.get_object()["apiVersion"] = type_->GroupVersion();
      std::string key = KeyOf(obj);
      fresh.emplace(std::move(key), std::make_shared<const json::value>(std::move(obj)));
    }
  }
  *resource_version = api::GetString(*list, {"metadata", "resourceVersion"});
  std::map<std::string, Object> old;
  {
    std::lock_guard lock(mu_);
    old.swap(objects_);
    objects_ = std::move(fresh);
  }
  // Replay the difference as events, as a re-list after a gap must. Only this
  // thread writes objects_, so it reads them here without the lock (others
  // read under it).
  for (const auto& [key, obj] : objects_) {
    auto it = old.find(key);
    Dispatch(it == old.end() ? nullptr : it->second.get(), *obj, false);
  }
  for (const auto& [key, obj] : old) {
    if (!objects_.contains(key)) Dispatch(obj.get(), *obj, true);
  }
  {
    std::lock_guard lock(mu_);
    synced_ = true;
  }
  synced_cv_.notify_all();
  return true;
}

void Informer::Run() {
  while (!stop_) {
    std::string rv;
    if (!ListOnce(&rv)) {
      for (int i = 0; i < 10 && !stop_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    ListOptions options;
    options.field_selector = field_selector_;
    options.resource_version = rv;
    auto watch = client_->Watch(*type_, "", options);
    if (!watch.ok()) continue;
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
      current_ = watch->get();
    }
    while (!stop_) {
      auto events = (*watch)->Next(std::chrono::steady_clock::now() + std::chrono::seconds(10));
      if (!events.ok()) break;  // Expired, cancelled or ended: re-list (or stop).
      for (auto& e : *events) {
        if (e.type == "BOOKMARK" || !e.Object().is_object()) continue;
        std::string key = KeyOf(e.Object());
        const bool deleted = e.type == "DELETED";
        Object obj = std::move(e.shared);  // In process: decoded once, for every informer.
        if (!obj) {
          api::DropManagedFields(e.object);
          obj = std::make_shared<const json::value>(std::move(e.object));
        }
        Object old;
        {
          std::lock_guard lock(mu_);
          auto it = objects_.find(key);
          if (it != objects_.end()) old = std::move(it->second);  // Replaced or erased next.
          if (deleted) {
            if (it != objects_.end()) objects_.erase(it);
          } else if (it != objects_.end()) {
            it->second = obj;
          } else {
            objects_.emplace(std::move(key), obj);
          }
        }
        Dispatch(old.get(), *obj, deleted);
      }
    }
    std::lock_guard lock(mu_);
    current_ = nullptr;
  }
}

}  // namespace kiso::client
