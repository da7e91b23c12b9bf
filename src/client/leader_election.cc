#include "client/leader_election.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <random>

#include "api/resources.h"
#include "common/clock.h"

namespace kiso::client {
namespace json = boost::json;

namespace {

const api::ResourceType& Leases() {
  return *api::FindResource("coordination.k8s.io", "v1", "leases");
}

// Whole seconds, rounded up (a Lease counts in seconds).
int64_t CeilSeconds(std::chrono::milliseconds d) { return (d.count() + 999) / 1000; }

std::string StringAt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

int64_t IntAt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_int64() ? v->get_int64() : 0;
}

}  // namespace

Status ValidateLeaderElection(const LeaderElectionOptions& o) {
  if (o.lease_name.empty() || o.lease_namespace.empty() || o.identity.empty())
    return Status(Code::kInvalidArgument, "leader election needs a lease name and an identity");
  if (o.retry_period.count() <= 0 || o.renew_deadline <= o.retry_period ||
      o.lease_duration <= o.renew_deadline) {
    return Status(
        Code::kInvalidArgument,
        fmt::format("leader election needs lease duration ({} ms) > renew deadline ({} "
                    "ms) > retry period ({} ms) > 0",
                    o.lease_duration.count(), o.renew_deadline.count(), o.retry_period.count()));
  }
  return Status::Ok();
}

LeaseRecord LeaseRecordOf(const json::value& lease) {
  LeaseRecord r;
  const json::object* spec = nullptr;
  if (lease.is_object()) {
    if (const json::value* s = lease.get_object().if_contains("spec"); s && s->is_object())
      spec = &s->get_object();
  }
  if (spec == nullptr) return r;
  r.holder = StringAt(*spec, "holderIdentity");
  r.lease_duration_seconds = IntAt(*spec, "leaseDurationSeconds");
  r.acquire_time = StringAt(*spec, "acquireTime");
  r.renew_time = StringAt(*spec, "renewTime");
  r.transitions = IntAt(*spec, "leaseTransitions");
  return r;
}

LeaderElector::LeaderElector(Client* client, LeaderElectionOptions options, Callback on_started,
                             Callback on_stopped)
    : client_(client),
      options_(std::move(options)),
      on_started_(std::move(on_started)),
      on_stopped_(std::move(on_stopped)) {}

LeaderElector::~LeaderElector() { Stop(); }

void LeaderElector::Start() {
  thread_ = std::thread([this] { Run(); });
}

void LeaderElector::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();  // It stops acting before it returns.
}

void LeaderElector::Abandon() {
  {
    std::lock_guard lock(mu_);
    release_ = false;  // The Lease stays with this identity until it expires.
  }
  Stop();
}

bool LeaderElector::ReleaseOnStop() const {
  std::lock_guard lock(mu_);
  return release_;
}

bool LeaderElector::leading() const {
  std::lock_guard lock(mu_);
  return leading_;
}

bool LeaderElector::WaitFor(SteadyClock::duration d) {
  std::unique_lock lock(mu_);
  return !wake_.wait_for(lock, d, [this] { return stopping_; });
}

bool LeaderElector::TryAcquireOrRenew() {
  lost_to_other_ = false;
  const auto now = SteadyClock::now();
  json::object spec{{"holderIdentity", options_.identity},
                    {"leaseDurationSeconds", CeilSeconds(options_.lease_duration)},
                    {"acquireTime", NowRfc3339Micro()},
                    {"renewTime", NowRfc3339Micro()},
                    {"leaseTransitions", 0}};
  auto current = client_->Get(Leases(), options_.lease_namespace, options_.lease_name);
  if (!current.ok()) {
    if (current.status().code() != Code::kNotFound) return false;
    json::value lease{
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata", {{"name", options_.lease_name}, {"namespace", options_.lease_namespace}}},
        {"spec", spec}};
    auto created = client_->Create(Leases(), options_.lease_namespace, lease);
    if (!created.ok()) return false;  // Another candidate created it first.
    observed_ = LeaseRecordOf(*created);
    observed_at_ = now;
    return true;
  }
  LeaseRecord record = LeaseRecordOf(*current);
  if (!(record == observed_)) {
    observed_ = record;
    observed_at_ = now;
  }
  const bool mine = record.holder == options_.identity;
  if (!record.holder.empty() && !mine) {
    auto duration = record.lease_duration_seconds > 0
                        ? std::chrono::seconds(record.lease_duration_seconds)
                        : std::chrono::duration_cast<std::chrono::seconds>(options_.lease_duration);
    if (observed_at_ + duration > now) {
      lost_to_other_ = true;
      return false;  // Held, and renewed within its duration as far as we have seen.
    }
  }
  if (mine) {
    spec["acquireTime"] = record.acquire_time;
    spec["leaseTransitions"] = record.transitions;
  } else {
    spec["leaseTransitions"] = record.transitions + 1;
  }
  json::value updated = *current;
  updated.as_object()["spec"] = spec;
  auto written = client_->Update(Leases(), options_.lease_namespace, updated);
  if (!written.ok()) return false;  // A conflict: someone else wrote it meanwhile.
  observed_ = LeaseRecordOf(*written);
  observed_at_ = now;
  return true;
}

void LeaderElector::Release() {
  auto current = client_->Get(Leases(), options_.lease_namespace, options_.lease_name);
  if (!current.ok() || LeaseRecordOf(*current).holder != options_.identity) return;
  json::value released = *current;
  json::object& spec = released.as_object()["spec"].as_object();
  spec["holderIdentity"] = "";
  spec["leaseDurationSeconds"] = 1;
  spec["renewTime"] = NowRfc3339Micro();
  if (auto s = client_->Update(Leases(), options_.lease_namespace, released); !s.ok()) {
    spdlog::warn("leader election {}/{}: release: {}", options_.lease_namespace,
                 options_.lease_name, s.status().ToString());
  }
}

void LeaderElector::Run() {
  std::mt19937 random(std::random_device{}());
  // A retry period and up to a tenth more, so that candidates do not march in step.
  auto retry = [&] {
    std::uniform_int_distribution<int64_t> extra(0, options_.retry_period.count() / 10);
    return options_.retry_period + std::chrono::milliseconds(extra(random));
  };
  const std::string lease = options_.lease_namespace + "/" + options_.lease_name;
  while (true) {
    // Candidate: until the Lease is ours.
    bool acquired = false;
    while (!(acquired = TryAcquireOrRenew())) {
      SteadyClock::duration wait = retry();
      if (lost_to_other_) {
        // Try again as soon as the holder's lease would run out, if sooner.
        auto expiry = observed_at_ +
                      std::chrono::seconds(std::max<int64_t>(observed_.lease_duration_seconds, 1)) -
                      SteadyClock::now() + std::chrono::milliseconds(1);
        wait = std::min<SteadyClock::duration>(wait, std::max<SteadyClock::duration>(expiry, {}));
      }
      if (!WaitFor(wait)) break;
    }
    if (!acquired) break;  // Stopped while a candidate.
    auto renewed = SteadyClock::now();
    {
      std::lock_guard lock(mu_);
      leading_ = !stopping_;
    }
    if (!leading()) {  // Stopped just as it won: hand it back at once.
      if (ReleaseOnStop()) Release();
      break;
    }
    spdlog::info("leader election {}: {} is the leader", lease, options_.identity);
    on_started_();
    // Leader: renew until stopped, or until it cannot.
    bool stopped = false;
    while (true) {
      if (!WaitFor(options_.retry_period)) {
        stopped = true;
        break;
      }
      if (TryAcquireOrRenew()) {
        renewed = SteadyClock::now();
        continue;
      }
      if (lost_to_other_) {
        spdlog::warn("leader election {}: {} holds it now", lease, observed_.holder);
        break;
      }
      if (SteadyClock::now() - renewed >= options_.renew_deadline) {
        spdlog::warn("leader election {}: not renewed within {} ms; stepping down", lease,
                     options_.renew_deadline.count());
        break;
      }
    }
    on_stopped_();  // Nothing acts once it returns.
    {
      std::lock_guard lock(mu_);
      leading_ = false;
    }
    if (stopped) {
      if (ReleaseOnStop()) Release();
      break;
    }
  }
}

}  // namespace kiso::client
