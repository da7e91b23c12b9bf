#include "controller/controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>

#include "api/object.h"
#include "common/clock.h"
#include "common/recover.h"

namespace kiso::controller {

namespace json = boost::json;

Controller::Controller(client::Client* client, std::string name, int workers,
                       client::SharedInformers* shared)
    : client_(client),
      name_(std::move(name)),
      workers_count_(workers),
      shared_(shared),
      events_(client, name_) {}

Controller::~Controller() { Stop(); }

client::Informer* Controller::Watch(const api::ResourceType& type,
                                    client::Informer::Handler handler) {
  client::Informer* informer;
  if (shared_) {
    informer = shared_->For(type);
    // Added at Start(): a shared informer may run already, and it would hand
    // its objects (and any event) to the handler before this object is whole.
    pending_.emplace_back(informer, std::move(handler));
  } else {
    owned_.push_back(std::make_unique<client::Informer>(client_, &type, std::move(handler)));
    informer = owned_.back().get();
  }
  informers_.push_back(informer);
  return informer;
}

Status Controller::UpdateFresh(const api::ResourceType& type, boost::json::value obj,
                               const std::function<void(boost::json::value&)>& apply) {
  std::string ns(api::GetString(obj, {"metadata", "namespace"}));
  std::string name(api::GetString(obj, {"metadata", "name"}));
  apply(obj);
  auto res = client_->Update(type, ns, obj);
  if (!res.ok() && res.status().code() == Code::kConflict) {
    auto fresh = client_->Get(type, ns, name);
    if (!fresh.ok())
      return fresh.status().code() == Code::kNotFound ? Status::Ok() : fresh.status();
    apply(*fresh);
    res = client_->Update(type, ns, *fresh);
  }
  return res.ok() || res.status().code() == Code::kNotFound ? Status::Ok() : res.status();
}

Status Controller::WriteStatusFields(const api::ResourceType& type, const json::value& obj,
                                     const json::object& fields) {
  const auto* have = api::Find(obj, {"status"});
  bool same = true;
  for (const auto& [k, v] : fields) {
    const auto* h = have && have->is_object() ? have->get_object().if_contains(k) : nullptr;
    same = same && ((h && *h == v) || (!h && v == 0));
  }
  if (same) return Status::Ok();
  json::value next = obj;
  auto& status = api::Child(next.as_object(), "status");
  for (const auto& [k, v] : fields) status[k] = v;
  auto res = client_->Update(type, api::GetString(obj, {"metadata", "namespace"}), next, "status");
  return res.ok() || res.status().code() == Code::kNotFound ? Status::Ok() : res.status();
}

WorkerPool& Controller::Pool() {
  // Every controller's passes, in one pool: a thread for each pass under way,
  // none for an idle controller. Never destroyed: its threads end with the
  // process.
  static auto* pool = new WorkerPool(1024, std::chrono::seconds(2));
  return *pool;
}

void Controller::Start() {
  for (auto& [informer, handler] : pending_)
    handlers_.emplace_back(informer, informer->AddHandler(std::move(handler)));
  pending_.clear();
  if (shared_) shared_->Start();
  for (auto& i : owned_) i->Start();
  {
    std::lock_guard lock(mu_);
    starting_ = true;
  }
  Pool().Run([this] { ServeOnceSynced(); });
}

void Controller::ServeOnceSynced() {
  // Keys are served once every informer has listed; until then they wait,
  // and this looks again in 10 ms as a timed job, holding no thread.
  bool synced = std::all_of(informers_.begin(), informers_.end(),
                            [](const client::Informer* i) { return i->synced(); });
  if (!synced && !stopping_) {
    Pool().RunAt(std::chrono::steady_clock::now() + std::chrono::milliseconds(10),
                 [this] { ServeOnceSynced(); });
    return;
  }
  if (!stopping_ && workers_count_ > 0) {  // None: a test's ReconcileGuarded alone.
    queue_.Serve(&Pool(), workers_count_, [this](const std::string& key) { Pass(key); });
  }
  std::lock_guard lock(mu_);
  starting_ = false;
  started_cv_.notify_all();
}

void Controller::Stop() {
  if (stopping_.exchange(true)) return;
  OnStop();
  {
    std::unique_lock lock(mu_);
    started_cv_.wait(lock, [this] { return !starting_; });
  }
  queue_.ShutDown();  // Waits for the passes under way.
  for (auto& [informer, id] : handlers_) informer->RemoveHandler(id);
  handlers_.clear();
  for (auto& i : owned_) i->Stop();
}

void Controller::Pass(const std::string& key) {
  Status s = RunPass(key);
  int failures = 0;
  {
    std::lock_guard lock(mu_);
    if (s.ok()) {
      failures_.erase(key);
    } else {
      failures = ++failures_[key];
    }
  }
  if (!s.ok()) {
    auto delay = std::chrono::milliseconds(5) * (1LL << std::min(failures - 1, 14));
    delay = std::min<std::chrono::milliseconds>(delay, std::chrono::seconds(60));
    if (s.code() != Code::kConflict)
      spdlog::info("{}: {}: {} (retry in {} ms)", name_, key, s.ToString(), delay.count());
    queue_.AddAfter(key, delay);
  }
  queue_.Done(key);
}

std::optional<json::value> Controller::Subject(const std::string& key) {
  if (informers_.empty()) return std::nullopt;
  size_t slash = key.find('/');
  if (slash == std::string::npos) return informers_.front()->Get("", key);  // Cluster-scoped.
  return informers_.front()->Get(key.substr(0, slash), key.substr(slash + 1));
}

Status Controller::ReconcileGuarded(const std::string& key) {
  if (!queue_.Claim(key)) return MakeStatus(Code::kUnavailable, "{} has stopped", name_);
  Status s = RunPass(key);
  queue_.Done(key);
  return s;
}

Status Controller::RunPass(const std::string& key) {
  Status s;
  try {
    s = Reconcile(key);
  } catch (...) {
    std::string_view what = CurrentExceptionMessage();
    ReportRecovered(fmt::format("{}: {}", name_, key), what);
    s = MakeStatus(Code::kInternal, "reconcile failed: {}", what);
  }
  // A failure a person may have to act on (not a lost race or a busy store):
  // said on the object, where `kubectl describe` shows it. The recorder
  // aggregates repeats into one Event's count.
  if (s.code() == Code::kInternal || s.code() == Code::kInvalidArgument) {
    try {
      if (auto subject = Subject(key)) {
        events_.Record(*subject, "Warning", "ReconcileError",
                       fmt::format("{}: {}", name_, s.message()));
      }
    } catch (...) {
      ReportRecovered(fmt::format("{}: {}: recording a failure", name_, key),
                      CurrentExceptionMessage());
    }
  }
  return s;
}

std::vector<std::string> OwnerKeys(const json::value& obj, std::string_view kind) {
  std::vector<std::string> out;
  const auto* refs = api::Find(obj, {"metadata", "ownerReferences"});
  if (!refs || !refs->is_array()) return out;
  std::string ns(api::GetString(obj, {"metadata", "namespace"}));
  for (const auto& ref : refs->get_array()) {
    if (api::GetString(ref, {"kind"}) == kind)
      out.push_back(ns + "/" + std::string(api::GetString(ref, {"name"})));
  }
  return out;
}

std::string ControllerUid(const json::value& obj, std::string_view kind) {
  const auto* refs = api::Find(obj, {"metadata", "ownerReferences"});
  if (!refs || !refs->is_array()) return "";
  for (const auto& ref : refs->get_array()) {
    const auto* c = api::Find(ref, {"controller"});
    if (c && c->is_bool() && c->get_bool() && api::GetString(ref, {"kind"}) == kind)
      return std::string(api::GetString(ref, {"uid"}));
  }
  return "";
}

bool IsActivePod(const json::value& pod) {
  auto phase = api::GetString(pod, {"status", "phase"});
  return phase != "Succeeded" && phase != "Failed" &&
         api::GetString(pod, {"metadata", "deletionTimestamp"}).empty();
}

std::optional<int64_t> ParseWholeNumber(std::string_view s) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

int64_t ScaledIntOrPercent(const json::value* v, int64_t total, bool round_up, int64_t fallback) {
  if (!v) return fallback;
  if (v->is_int64()) return std::max<int64_t>(0, v->get_int64());
  if (v->is_string()) {
    std::string_view s = v->get_string();
    if (s.ends_with("%")) {
      auto pct = ParseWholeNumber(s.substr(0, s.size() - 1));
      if (!pct || *pct < 0) return fallback;
      // Integer arithmetic, as upstream: ceil or floor of pct × total / 100.
      int64_t x = *pct * total;
      return round_up ? (x + 99) / 100 : x / 100;
    }
    return std::max<int64_t>(0, ParseWholeNumber(s).value_or(fallback));
  }
  return fallback;
}

json::object PodMetadataFromTemplate(const json::value& owner) {
  json::object meta;
  const auto* tm = api::Find(owner, {"spec", "template", "metadata"});
  if (!tm || !tm->is_object()) return meta;
  for (const char* field : {"labels", "annotations", "finalizers"}) {
    if (const auto* v = tm->get_object().if_contains(field)) meta[field] = *v;
  }
  return meta;
}

bool IsReadyPod(const json::value& pod) { return api::ConditionTrue(pod, "Ready"); }

bool IsAvailablePod(const json::value& pod, int64_t min_ready_seconds,
                    std::chrono::system_clock::time_point now,
                    std::chrono::system_clock::duration* wait) {
  if (!IsReadyPod(pod)) return false;
  if (min_ready_seconds <= 0) return true;
  const auto* conditions = api::Find(pod, {"status", "conditions"});
  for (const auto& c : conditions->get_array()) {
    if (api::GetString(c, {"type"}) != "Ready") continue;
    auto since = ParseTime(api::GetString(c, {"lastTransitionTime"}));
    if (!since) return false;
    const auto at = *since + std::chrono::seconds(min_ready_seconds);
    if (at <= now) return true;
    if (wait) *wait = at - now;
    return false;
  }
  return false;
}

void Expectations::Expect(const std::string& key, int adds, int deletes) {
  std::lock_guard lock(mu_);
  pending_[key] = {adds, deletes, std::chrono::steady_clock::now()};
}

bool DeletionObserved(const json::value* old, const json::value& pod, bool deleted) {
  auto terminating = [](const json::value& o) {
    return !api::GetString(o, {"metadata", "deletionTimestamp"}).empty();
  };
  if (deleted) return !terminating(pod);  // `pod` is its last state.
  return terminating(pod) && (old == nullptr || !terminating(*old));
}

void Expectations::Observe(const std::string& key, int adds, int deletes) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  it->second.adds = std::max(0, it->second.adds - adds);
  it->second.deletes = std::max(0, it->second.deletes - deletes);
}

bool Expectations::Satisfied(const std::string& key) {
  constexpr auto kTimeout = std::chrono::minutes(5);
  std::lock_guard lock(mu_);
  auto it = pending_.find(key);
  if (it == pending_.end()) return true;
  const Pending& p = it->second;
  if ((p.adds > 0 || p.deletes > 0) && std::chrono::steady_clock::now() - p.since < kTimeout)
    return false;
  pending_.erase(it);
  return true;
}

void Expectations::Forget(const std::string& key) {
  std::lock_guard lock(mu_);
  pending_.erase(key);
}

}  // namespace kiso::controller
