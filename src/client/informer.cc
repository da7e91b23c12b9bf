#include "client/informer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
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
  pooled_ = client_->InProcess();
  if (pooled_) {
    Schedule();
  } else {
    thread_ = std::thread([this] { Run(); });
  }
}

void Informer::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (current_) current_->Cancel();
  }
  synced_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    // A step under way sees stop_ and ends; one queued or timed never starts.
    std::unique_lock lock(step_mu_);
    if (timer_ != 0 && Pool().Cancel(timer_)) --jobs_;
    timer_ = 0;
    step_cv_.wait(lock, [this] { return jobs_ == 0; });
  }
  {
    std::lock_guard lock(mu_);
    current_ = nullptr;
  }
  watch_.reset();  // No step runs any more: its `ready` goes with it.
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

std::unique_ptr<WatchStream> Informer::OpenWatch(const std::string& resource_version) {
  ListOptions options;
  options.field_selector = field_selector_;
  options.resource_version = resource_version;
  auto watch = client_->Watch(*type_, "", options);
  if (!watch.ok()) {
    spdlog::warn("informer {}: watch: {}", type_->plural, watch.status().ToString());
    return nullptr;
  }
  std::lock_guard lock(mu_);
  if (stop_) return nullptr;
  current_ = watch->get();
  return std::move(*watch);
}

void Informer::Apply(std::vector<WatchEvent>& events) {
  for (auto& e : events) {
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

void Informer::Run() {
  while (!stop_) {
    std::string rv;
    if (!ListOnce(&rv)) {
      for (int i = 0; i < 10 && !stop_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    std::unique_ptr<WatchStream> watch = OpenWatch(rv);
    if (!watch) continue;
    while (!stop_) {
      auto events = watch->Next(std::chrono::steady_clock::now() + std::chrono::seconds(10));
      if (!events.ok()) break;  // Expired, cancelled or ended: re-list (or stop).
      Apply(*events);
    }
    std::lock_guard lock(mu_);
    current_ = nullptr;
  }
}

WorkerPool& Informer::Pool() {
  // Every in-process informer's steps: a thread a core (each step is a
  // handler's quick work), none once idle for a while. Never destroyed: its
  // threads end with the process.
  static auto* pool =
      new WorkerPool(static_cast<int>(std::max(2u, std::thread::hardware_concurrency())),
                     std::chrono::seconds(10));
  return *pool;
}

void Informer::Schedule() {
  std::lock_guard lock(step_mu_);
  ScheduleLocked();
}

void Informer::ScheduleLocked() {
  if (stop_) return;
  if (stepping_) {
    again_ = true;  // The step under way goes round once more; a queued one sees it all.
    return;
  }
  stepping_ = true;
  ++jobs_;
  Pool().Run([this] { Step(); });
}

void Informer::ScheduleAt(std::chrono::steady_clock::time_point when) {
  std::lock_guard lock(step_mu_);
  if (stop_ || (timer_ != 0 && timer_at_ == when)) return;
  if (timer_ != 0 && Pool().Cancel(timer_)) --jobs_;
  timer_ = 0;
  if (when == std::chrono::steady_clock::time_point::max()) return;
  ++jobs_;
  timer_at_ = when;
  timer_ = Pool().RunAt(when, [this, when] {
    // All under the lock: once jobs_ may reach 0, Stop may return and the
    // informer go.
    std::lock_guard timer_lock(step_mu_);
    if (timer_at_ == when) timer_ = 0;
    ScheduleLocked();
    --jobs_;  // This job.
    step_cv_.notify_all();
  });
}

void Informer::Step() {
  while (true) {
    {
      std::lock_guard lock(step_mu_);
      again_ = false;
    }
    if (!stop_) {
      try {
        Advance();
      } catch (...) {
        ReportRecovered(fmt::format("informer {}", type_->plural), CurrentExceptionMessage());
        std::unique_ptr<WatchStream> gone;
        {
          std::lock_guard lock(mu_);
          current_ = nullptr;
          gone = std::move(watch_);
        }
        retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        ScheduleAt(retry_at_);
      }
    }
    std::lock_guard lock(step_mu_);
    if (!again_ || stop_) {
      stepping_ = false;
      --jobs_;
      step_cv_.notify_all();
      return;
    }
  }
}

void Informer::Advance() {
  using Clock = std::chrono::steady_clock;
  if (!watch_) {
    if (Clock::now() < retry_at_) return ScheduleAt(retry_at_);
    std::string rv;
    if (!ListOnce(&rv)) {
      retry_at_ = Clock::now() + std::chrono::seconds(1);
      return ScheduleAt(retry_at_);
    }
    watch_ = OpenWatch(rv);
    if (!watch_) {
      retry_at_ = Clock::now() + std::chrono::seconds(1);
      return ScheduleAt(retry_at_);
    }
    if (!watch_->SetReady([this] { Schedule(); })) {
      // Not a stream of this process: a programming error, as only in-process
      // informers step. Said, and tried again, rather than hung.
      spdlog::error("informer {}: its watch cannot be read without a thread", type_->plural);
      {
        std::lock_guard lock(mu_);
        current_ = nullptr;
      }
      watch_.reset();
      retry_at_ = Clock::now() + std::chrono::seconds(1);
      return ScheduleAt(retry_at_);
    }
  }
  while (!stop_) {
    auto events = watch_->Next(Clock::time_point::min());  // Never waits.
    if (!events.ok()) {
      // Expired, cancelled or ended: re-list at once (or stop).
      {
        std::lock_guard lock(mu_);
        current_ = nullptr;
      }
      watch_.reset();
      if (!stop_) Schedule();
      return;
    }
    if (events->empty()) break;
    Apply(*events);
  }
  if (watch_) ScheduleAt(watch_->ReadBy());
}

}  // namespace kiso::client
