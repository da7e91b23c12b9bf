// Every controller (and the scheduler) against arbitrary stored objects: the
// input is one object of any served kind, defaulted and written into the
// store unvalidated — as an object stored by an older kiso or written straight
// into etcd would be — then each controller reconciles it through a real
// in-process API server on SQLite. Whatever a controller, an informer
// handler or the scheduler throws is a crash here (common/recover.h aborts in
// fuzzing builds), though the running server would survive it.
//
// Inputs are JSON objects; the custom mutator changes them structurally
// (json_mutator.h), so that most inputs are objects a real store could hold.
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/object.h"
#include "api/resources.h"
#include "api/validation.h"
#include "apiserver/api_server.h"
#include "client/client.h"
#include "client/in_process.h"
#include "client/shared_informers.h"
#include "controller/deployment_controller.h"
#include "controller/endpoints_controller.h"
#include "controller/garbage_collector.h"
#include "controller/job_controller.h"
#include "controller/namespace_controller.h"
#include "controller/node_lifecycle_controller.h"
#include "controller/replicaset_controller.h"
#include "json_mutator.h"
#include "scheduler/scheduler.h"
#include "store/store.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

namespace json = boost::json;
using namespace kiso;

constexpr std::string_view kNamespace = "fuzz";
constexpr std::string_view kName = "obj";
constexpr int kRounds = 3;

// The cluster the inputs are stored into: built once per process.
class World {
 public:
  World() {
    // Quiet unless asked (KISO_FUZZ_LOG=1): a log line per input would swamp the run.
    spdlog::set_level(getenv("KISO_FUZZ_LOG") ? spdlog::level::info : spdlog::level::off);
    // Under $TMPDIR: `make fuzz` points it at a directory it removes afterwards.
    const char* tmp = getenv("TMPDIR");
    std::string dir_template = std::string(tmp ? tmp : "/tmp") + "/kiso-fuzz-XXXXXX";
    dir_ = mkdtemp(dir_template.data());
    store_ = store::OpenStore("sqlite://" + dir_ + "/kiso.db").value();
    apiserver::ApiServerOptions options;
    options.port = 0;
    options.data_dir = dir_;
    server_ = apiserver::ApiServer::Start(store_.get(), options).value();
    client_ = std::make_unique<client::Client>(
        std::make_shared<client::InProcessTransport>(server_.get()), "fuzz");
    informers_ = std::make_unique<client::SharedInformers>(client_.get());
    gc_ = std::make_unique<controller::GarbageCollector>(client_.get(), informers_.get());
    namespaces_ =
        std::make_unique<controller::NamespaceController>(client_.get(), informers_.get());
    replicasets_ =
        std::make_unique<controller::ReplicaSetController>(client_.get(), informers_.get());
    deployments_ =
        std::make_unique<controller::DeploymentController>(client_.get(), informers_.get());
    jobs_ = std::make_unique<controller::JobController>(client_.get(), informers_.get());
    endpoints_ = std::make_unique<controller::EndpointsController>(client_.get(), informers_.get());
    nodes_ = std::make_unique<controller::NodeLifecycleController>(
        client_.get(), controller::NodeLifecycleOptions{}, Clock::Real(), informers_.get());
    scheduler::SchedulerOptions scheduler_options;
    scheduler_options.informers = informers_.get();
    scheduler_ = scheduler::Scheduler::Create(client_.get(), scheduler_options).value();
    // Informers and the scheduler run; the controllers' workers do not: each
    // input is reconciled here, by every controller, before the next.
    informers_->Start();
    scheduler_->Start();
    json::value ns = json::object{{"apiVersion", "v1"},
                                  {"kind", "Namespace"},
                                  {"metadata", json::object{{"name", kNamespace}}}};
    (void)client_->Create(*api::FindResource("", "v1", "namespaces"), "", ns);
  }

  void Run(const json::object& input) {
    const auto* kind = input.if_contains("kind");
    if (!kind || !kind->is_string()) return;
    const api::ResourceType* type = nullptr;
    for (const auto& t : api::BuiltinResources()) {
      if (t.kind == kind->get_string()) type = &t;
    }
    if (!type) return;
    json::object obj = input;
    std::string ns(type->namespaced ? kNamespace : "");
    {
      auto& meta = api::Child(obj, "metadata");  // Not held past ApplyDefaults, which may move it.
      meta["name"] = kName;
      if (type->namespaced) {
        meta["namespace"] = ns;
      } else {
        meta.erase("namespace");
      }
    }
    // Defaulted as the API server stores everything, but never validated.
    api::ApplyDefaults(*type, obj);
    std::string uid(api::GetString(obj, {"metadata", "uid"}));
    std::string key = type->StoreKey(ns, kName);
    store::TxnRequest txn;
    txn.success.push_back(store::TxnOp::Put(key, json::serialize(obj)));
    auto put = store_->Txn(txn);
    if (!put.ok()) return;
    WaitUntilSeen(*type, ns, put->revision);
    std::string ns_key = type->namespaced ? ns + "/" + std::string(kName) : std::string(kName);
    // A few rounds: what one controller made (a ReplicaSet, pods) the next
    // round's reconciles see, so the states past a first create are reached.
    for (int round = 0; round < kRounds; ++round) {
      for (controller::Controller* c : std::initializer_list<controller::Controller*>{
               replicasets_.get(), deployments_.get(), jobs_.get(), endpoints_.get(),
               namespaces_.get(), nodes_.get()}) {
        (void)c->ReconcileGuarded(ns_key);
      }
      if (!uid.empty()) (void)gc_->ReconcileGuarded(uid);
      nodes_->MonitorOnce();
      if (round + 1 < kRounds) WaitCaughtUp();
    }
    Clean();
  }

 private:
  // Until the shared informer holds the object at `revision` (or a moment has passed).
  void WaitUntilSeen(const api::ResourceType& type, const std::string& ns, int64_t revision) {
    client::Informer* informer = informers_->For(type);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
      auto seen = informer->Get(ns, std::string(kName));
      if (seen &&
          api::GetString(*seen, {"metadata", "resourceVersion"}) == std::to_string(revision))
        return;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  // Until every informer holds what the API holds in the fuzz namespace (the
  // controllers' own writes included), or a moment has passed.
  void WaitCaughtUp() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (const auto& type : api::BuiltinResources()) {
      if (!type.namespaced) continue;
      auto listed = client_->List(type, std::string(kNamespace));
      if (!listed.ok()) continue;
      std::map<std::string, std::string> want;
      for (const auto& item : api::GetArray(*listed, {"items"})) {
        want[std::string(api::GetString(item, {"metadata", "name"}))] =
            api::GetString(item, {"metadata", "resourceVersion"});
      }
      client::Informer* informer = informers_->For(type);
      while (std::chrono::steady_clock::now() < deadline) {
        std::map<std::string, std::string> have;
        for (const auto& obj : informer->List()) {
          if (api::GetString(obj, {"metadata", "namespace"}) != kNamespace) continue;
          have[std::string(api::GetString(obj, {"metadata", "name"}))] =
              api::GetString(obj, {"metadata", "resourceVersion"});
        }
        if (have == want) break;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  }

  // Everything in the fuzz namespace and every cluster-scoped object of the
  // input's name goes, so inputs do not pile up.
  void Clean() {
    store::TxnRequest txn;
    for (const auto& t : api::BuiltinResources()) {
      if (t.namespaced) {
        txn.success.push_back(store::TxnOp::Delete(
            store::KeyRange::Prefix(t.StorePrefix() + std::string(kNamespace) + "/")));
      } else {
        txn.success.push_back(store::TxnOp::Delete(store::KeyRange::Single(t.StoreKey("", kName))));
      }
    }
    (void)store_->Txn(txn);
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::SharedInformers> informers_;
  std::unique_ptr<controller::GarbageCollector> gc_;
  std::unique_ptr<controller::NamespaceController> namespaces_;
  std::unique_ptr<controller::ReplicaSetController> replicasets_;
  std::unique_ptr<controller::DeploymentController> deployments_;
  std::unique_ptr<controller::JobController> jobs_;
  std::unique_ptr<controller::EndpointsController> endpoints_;
  std::unique_ptr<controller::NodeLifecycleController> nodes_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
};

World& TheWorld() {
  static World* world = new World();  // Never destroyed: libFuzzer exits the process.
  return *world;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = api::ParseJson(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!parsed.ok() || !parsed->is_object()) return 0;
  TheWorld().Run(parsed->get_object());
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  std::mt19937_64 rng(seed);
  if (rng() % 8 != 0) {
    if (size_t n = kiso::fuzz::MutateJson(data, size, max_size, rng)) return n;
  }
  return LLVMFuzzerMutate(data, size, max_size);
}
