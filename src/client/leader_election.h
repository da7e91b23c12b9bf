// LeaderElection: one holder at a time of a coordination.k8s.io/v1 Lease, as
// kube-scheduler and kube-controller-manager elect theirs (client-go's
// leaderelection, written here from its documented rules):
//   - A candidate takes the Lease when it does not exist, when it names no
//     holder, or when its record has not changed for the holder's lease
//     duration — measured on the candidate's own clock from when it last saw
//     the record change, never from the times written in it (the servers'
//     clocks need not agree).
//   - The leader renews every retry period. One that has not renewed for the
//     renew deadline (shorter than the lease duration), or that finds another
//     holder, stops acting — its `on_stopped` returns once nothing acts —
//     before a candidate can take the Lease over.
//   - Stop() stops acting first, then releases the Lease (no holder, a lease
//     of one second), so that a successor need not wait out the duration.
// Every write is a compare-and-swap on the Lease's resourceVersion: two
// candidates racing for it cannot both win.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "client/client.h"

namespace kiso::client {

struct LeaderElectionOptions {
  std::string lease_namespace = "kube-system";
  std::string lease_name;
  // Who this candidate is (upstream: hostname and a unique id).
  std::string identity;
  // Upstream's defaults (--leader-elect-lease-duration, -renew-deadline, -retry-period).
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};

// InvalidArgument unless lease duration > renew deadline > retry period > 0
// and the names are set.
Status ValidateLeaderElection(const LeaderElectionOptions& options);

// What a Lease's spec says (the record the candidates compare).
struct LeaseRecord {
  std::string holder;
  int64_t lease_duration_seconds = 0;
  std::string acquire_time;
  std::string renew_time;
  int64_t transitions = 0;
  bool operator==(const LeaseRecord&) const = default;
};
LeaseRecord LeaseRecordOf(const boost::json::value& lease);

class LeaderElector {
 public:
  using Callback = std::function<void()>;
  // `on_started` runs on the elector's thread when this becomes the leader;
  // `on_stopped` when it no longer is (lost, or Stop()), and must return only
  // once nothing started by `on_started` still acts.
  LeaderElector(Client* client, LeaderElectionOptions options, Callback on_started,
                Callback on_stopped);
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  void Start();
  // Stops acting (on_stopped, when leading), then releases the Lease.
  void Stop();
  // Stops without releasing, as if the process had died (tests).
  void Abandon();

  bool leading() const;
  // One attempt to take or renew the Lease; true when this holds it afterwards.
  // Also what tests call to drive an elector without its thread.
  bool TryAcquireOrRenew();

 private:
  using SteadyClock = std::chrono::steady_clock;
  void Run();
  void Release();
  // Waits `d` or until stopped; false when stopped.
  bool WaitFor(SteadyClock::duration d);
  bool ReleaseOnStop() const;

  Client* client_;
  LeaderElectionOptions options_;
  Callback on_started_;
  Callback on_stopped_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  bool leading_ = false;   // guarded by mu_
  bool release_ = true;    // guarded by mu_; false once abandoned
  // Touched only by the thread that runs TryAcquireOrRenew.
  LeaseRecord observed_;
  SteadyClock::time_point observed_at_{};
  bool lost_to_other_ = false;  // The last attempt found another, live holder.
};

}  // namespace kiso::client
