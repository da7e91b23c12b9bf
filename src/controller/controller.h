// Controller: the reconcile-loop skeleton every controller shares (the seed's
// Error = Desired − Actual, 07.7.3): informers feed keys into a work queue;
// workers call Reconcile(key), level-triggered and idempotent; a failed key is
// retried with exponential back-off (5 ms doubling to 60 s), a successful one
// resets its back-off. Each Reconcile is isolated: whatever it throws (a bug
// that a stored object found) is caught like an error, logged, recorded as a
// Warning event on the object and retried with the same back-off — no object
// can end the process (Kubernetes' controllers recover from a panic per key).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/object.h"
#include "client/client.h"
#include "client/event_recorder.h"
#include "client/informer.h"
#include "client/shared_informers.h"
#include "client/work_queue.h"
#include "common/worker_pool.h"

namespace kiso::controller {

class Controller {
 public:
  // With `shared`, the controller's informers are the shared ones (its handlers
  // are added to them and removed on Stop); else it owns its informers.
  Controller(client::Client* client, std::string name, int workers,
             client::SharedInformers* shared = nullptr);
  virtual ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Starts the informers; once all have listed, keys are served: each pass runs
  // on a pool shared by every controller (at most `workers` of this one's at a
  // time), so an idle controller holds no thread.
  void Start();
  // Stops the workers and informers. Derived destructors must call it first.
  void Stop();

 protected:
  virtual Status Reconcile(const std::string& key) = 0;
  // The object a key stands for, to record a failure on: by default the
  // first watched kind's object named by the "ns/name" key; nullopt if none.
  virtual std::optional<boost::json::value> Subject(const std::string& key);
  // Stops threads of the derived controller's own; Stop() calls it first, so
  // nothing of the controller runs once Stop() returns.
  virtual void OnStop() {}

  client::Informer* Watch(const api::ResourceType& type, client::Informer::Handler handler);
  void Enqueue(const std::string& key) { queue_.Add(key); }
  void EnqueueAfter(const std::string& key, std::chrono::steady_clock::duration delay) {
    queue_.AddAfter(key, delay);
  }
  client::Client* client() const { return client_; }
  // Updates `obj` (as the cache had it) after `apply` changed it; when the
  // cache was behind (409), applies `apply` to the object as the API has it
  // now and updates that, once. A controller's own writes racing its cache
  // then cost one read rather than a back-off. NotFound is not an error.
  Status UpdateFresh(const api::ResourceType& type, boost::json::value obj,
                     const std::function<void(boost::json::value&)>& apply);
  // Writes `fields` into obj's status (the status subresource) unless it
  // holds them already, an absent field counting as 0: a controller's
  // observed counts. NotFound is not an error; a conflict is (retried).
  Status WriteStatusFields(const api::ResourceType& type, const boost::json::value& obj,
                           const boost::json::object& fields);
  const std::string& name() const { return name_; }
  // Stop() has begun: a Reconcile that walks many objects returns early.
  bool stopping() const { return stopping_.load(); }
  // An event on `obj` from this controller (best effort).
  void RecordEvent(const boost::json::value& obj, const std::string& type,
                   const std::string& reason, const std::string& message) {
    events_.Record(obj, type, reason, message);
  }

 public:
  // A pass over `key` now, out of the queue's turn (tests call it): never
  // beside a worker's pass over the same key, as workers never overlap on
  // one key. Unavailable once the controller stops.
  Status ReconcileGuarded(const std::string& key);

 private:
  // The pool that runs every controller's passes (WorkQueue::Serve).
  static WorkerPool& Pool();
  // Start's job: serves the queue once every informer has listed.
  void ServeOnceSynced();
  // A pass as the queue serves it: RunPass, then the key's back-off on failure, and Done.
  void Pass(const std::string& key);
  // Reconcile(key), with anything it throws turned into an Internal status
  // and a failure recorded as an event.
  Status RunPass(const std::string& key);

  client::Client* client_;
  std::string name_;
  int workers_count_;
  client::SharedInformers* shared_;
  std::vector<std::unique_ptr<client::Informer>> owned_;
  std::vector<client::Informer*> informers_;                 // All it watches.
  std::vector<std::pair<client::Informer*, int>> handlers_;  // Its handlers on shared ones.
  // Handlers for shared informers not added yet (until Start()).
  std::vector<std::pair<client::Informer*, client::Informer::Handler>> pending_;
  client::WorkQueue queue_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable started_cv_;
  bool starting_ = false;                // Guarded by mu_: Start's job waits for the informers.
  std::map<std::string, int> failures_;  // guarded by mu_
  client::EventRecorder events_;
};

// Expectations: the creates and deletes a controller has issued for a key but
// not yet seen through its informer (upstream's ControllerExpectations). While
// any are pending the controller must not act on the key again, or it would
// act twice on a cache that lags its own writes. Pending ones expire after five
// minutes, so a lost event cannot wedge a key. Thread-safe.
class Expectations {
 public:
  void Expect(const std::string& key, int adds, int deletes);
  // One of the key's own creates or deletes showed up, or failed to happen.
  void Created(const std::string& key) { Observe(key, 1, 0); }
  void Deleted(const std::string& key) { Observe(key, 0, 1); }
  // Nothing pending for the key (or what is pending has expired).
  bool Satisfied(const std::string& key);
  void Forget(const std::string& key);

 private:
  struct Pending {
    int adds = 0;
    int deletes = 0;
    std::chrono::steady_clock::time_point since;
  };
  void Observe(const std::string& key, int adds, int deletes);

  std::mutex mu_;
  std::map<std::string, Pending> pending_;
};

// Whether this pod event is the moment its deletion is observed (upstream's
// DeletionObserved, for expectations): it gained a deletionTimestamp (a
// graceful delete: it goes later, when its node has stopped it), or it went
// without ever having one. Counted once, whichever comes first, so that a
// pod's final removal cannot consume a later expectation.
bool DeletionObserved(const boost::json::value* old, const boost::json::value& pod, bool deleted);

using api::KeyOf;
using api::SplitKey;
// "ns/name" keys of the object's owners of `kind` (by ownerReferences): what a
// change to a dependent requeues.
std::vector<std::string> OwnerKeys(const boost::json::value& obj, std::string_view kind);
// The uid of the object's controller owner of `kind`, or "".
std::string ControllerUid(const boost::json::value& obj, std::string_view kind);
// A whole decimal number, or nullopt (no exceptions: the text is a user's).
std::optional<int64_t> ParseWholeNumber(std::string_view s);
// An int-or-percent field (maxSurge, maxUnavailable) against `total`, the
// percentage rounded up or down (upstream's GetScaledValueFromIntOrPercent).
// Admission refuses anything else; an object stored before it did, or an
// absent field, gets `fallback`.
int64_t ScaledIntOrPercent(const boost::json::value* v, int64_t total, bool round_up,
                           int64_t fallback);

// A new pod's metadata from `owner`'s spec.template.metadata, as upstream's
// GetPodFromTemplate takes it: labels, annotations and finalizers (a name
// there would make every pod collide; generateName names them).
boost::json::object PodMetadataFromTemplate(const boost::json::value& owner);
// A pod counts as active until it has succeeded, failed or started deleting.
bool IsActivePod(const boost::json::value& pod);
bool IsReadyPod(const boost::json::value& pod);
// Ready, and for at least `min_ready_seconds` by its Ready condition's last
// transition (upstream's IsPodAvailable). When it is ready but not yet
// available, *wait (if given) is how long until it is.
bool IsAvailablePod(const boost::json::value& pod, int64_t min_ready_seconds,
                    std::chrono::system_clock::time_point now,
                    std::chrono::system_clock::duration* wait = nullptr);

}  // namespace kiso::controller
