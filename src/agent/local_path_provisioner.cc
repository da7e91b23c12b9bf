#include "agent/local_path_provisioner.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <filesystem>

#include "api/object.h"
#include "api/storage.h"
#include "client/event_recorder.h"

namespace kiso::agent {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

const api::ResourceType& Claims() { return *api::FindResource("", "v1", "persistentvolumeclaims"); }
const api::ResourceType& Volumes() { return *api::FindResource("", "v1", "persistentvolumes"); }
const api::ResourceType& Classes() {
  return *api::FindResource("storage.k8s.io", "v1", "storageclasses");
}

// Which node a volume's directory is on (the provisioner's own record).
constexpr std::string_view kVolumeNode = "local.path.provisioner/selected-node";

}  // namespace

LocalPathProvisioner::LocalPathProvisioner(client::Client* client, std::string node_name,
                                           std::string dir)
    : client_(client), node_name_(std::move(node_name)), dir_(std::move(dir)) {
  auto any = [this](const json::value*, const json::value&, bool) { Dirty(); };
  claims_ = std::make_unique<client::Informer>(client_, &Claims(), any);
  volumes_ = std::make_unique<client::Informer>(client_, &Volumes(), any);
  classes_ = std::make_unique<client::Informer>(client_, &Classes(), any);
}

LocalPathProvisioner::~LocalPathProvisioner() { Stop(); }

Status LocalPathProvisioner::EnsureStorageClass(client::Client* client) {
  json::value cls = json::object{
      {"apiVersion", "storage.k8s.io/v1"},
      {"kind", "StorageClass"},
      {"metadata",
       json::object{
           {"name", "local-path"},
           {"annotations", json::object{{"storageclass.kubernetes.io/is-default-class", "true"}}}}},
      {"provisioner", kName},
      {"reclaimPolicy", "Delete"},
      {"volumeBindingMode", "WaitForFirstConsumer"},
      {"allowVolumeExpansion", true}};
  auto made = client->Create(Classes(), "", cls);
  if (made.ok() || made.status().code() == Code::kAlreadyExists) return Status::Ok();
  return made.status();
}

void LocalPathProvisioner::Start() {
  for (auto* i : {claims_.get(), volumes_.get(), classes_.get()}) i->Start();
  thread_ = std::thread([this] { Run(); });
}

void LocalPathProvisioner::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto* i : {claims_.get(), volumes_.get(), classes_.get()}) i->Stop();
}

void LocalPathProvisioner::Dirty() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

void LocalPathProvisioner::Run() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (auto* i : {claims_.get(), volumes_.get(), classes_.get()}) i->WaitForSync(deadline);
  bool retry = false;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (retry) {
        cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
      } else {
        cv_.wait(lock, [&] { return dirty_ || stop_; });
      }
      if (stop_) return;
      dirty_ = false;
    }
    retry = !Pass();
  }
}

bool LocalPathProvisioner::Pass() {
  bool ok = true;
  for (const auto& claim : claims_->List()) {
    if (!api::GetString(claim, {"metadata", "deletionTimestamp"}).empty() ||
        !api::GetString(claim, {"spec", "volumeName"}).empty() ||
        api::GetString(claim, {"metadata", "annotations", api::kSelectedNodeAnnotation}) !=
            node_name_)
      continue;
    auto cls = classes_->Get("", api::ClaimClass(claim));
    if (!cls || api::GetString(*cls, {"provisioner"}) != kName) continue;
    if (volumes_->Get("", fmt::format("pvc-{}", api::GetString(claim, {"metadata", "uid"}))))
      continue;  // Made already; the PV controller binds it.
    if (Status s = Provision(claim, *cls); !s.ok()) {
      spdlog::warn("local-path: provision {}/{}: {}",
                   api::GetString(claim, {"metadata", "namespace"}),
                   api::GetString(claim, {"metadata", "name"}), s.ToString());
      ok = false;
    }
  }
  for (const auto& volume : volumes_->List()) {
    if (api::GetString(volume, {"metadata", "annotations", api::kProvisionedByAnnotation}) !=
            kName ||
        api::GetString(volume, {"metadata", "annotations", kVolumeNode}) != node_name_ ||
        api::GetString(volume, {"status", "phase"}) != "Released" ||
        api::GetString(volume, {"spec", "persistentVolumeReclaimPolicy"}) != "Delete" ||
        !api::GetString(volume, {"metadata", "deletionTimestamp"}).empty())
      continue;
    if (Status s = Reclaim(volume); !s.ok()) {
      spdlog::warn("local-path: delete volume {}: {}", api::GetString(volume, {"metadata", "name"}),
                   s.ToString());
      ok = false;
    }
  }
  return ok;
}

Status LocalPathProvisioner::Provision(const json::value& claim, const json::value& cls) {
  std::string ns(api::GetString(claim, {"metadata", "namespace"}));
  std::string name(api::GetString(claim, {"metadata", "name"}));
  std::string volume_name = fmt::format("pvc-{}", api::GetString(claim, {"metadata", "uid"}));
  std::string path = fmt::format("{}/{}_{}_{}", dir_, volume_name, ns, name);
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return MakeStatus(Code::kInternal, "create {}: {}", path, ec.message());
  // Any container user may write there, as K3s' provisioner makes it.
  fs::permissions(path, fs::perms::all, ec);
  json::string storage(api::GetString(claim, {"spec", "resources", "requests", "storage"}));
  json::object requirement{{"key", "kubernetes.io/hostname"},
                           {"operator", "In"},
                           {"values", json::array{json::string(node_name_)}}};
  json::object term{{"matchExpressions", json::array{std::move(requirement)}}};
  json::object affinity{
      {"required", json::object{{"nodeSelectorTerms", json::array{std::move(term)}}}}};
  json::object spec{
      {"capacity", json::object{{"storage", storage}}},
      {"accessModes", api::GetArray(claim, {"spec", "accessModes"})},
      {"persistentVolumeReclaimPolicy", api::GetString(cls, {"reclaimPolicy"}).empty()
                                            ? std::string_view("Delete")
                                            : api::GetString(cls, {"reclaimPolicy"})},
      {"storageClassName", api::GetString(cls, {"metadata", "name"})},
      {"volumeMode", "Filesystem"},
      {"hostPath", json::object{{"path", path}, {"type", "DirectoryOrCreate"}}},
      {"nodeAffinity", std::move(affinity)},
      {"claimRef",
       json::object{{"kind", "PersistentVolumeClaim"},
                    {"apiVersion", "v1"},
                    {"namespace", ns},
                    {"name", name},
                    {"uid", api::GetString(claim, {"metadata", "uid"})},
                    {"resourceVersion", api::GetString(claim, {"metadata", "resourceVersion"})}}}};
  if (const auto* options = api::Find(cls, {"mountOptions"})) spec["mountOptions"] = *options;
  json::value pv = json::object{
      {"apiVersion", "v1"},
      {"kind", "PersistentVolume"},
      {"metadata", json::object{{"name", volume_name},
                                {"annotations", json::object{{api::kProvisionedByAnnotation, kName},
                                                             {kVolumeNode, node_name_}}}}},
      {"spec", std::move(spec)}};
  auto made = client_->Create(Volumes(), "", pv);
  if (!made.ok() && made.status().code() != Code::kAlreadyExists) {
    fs::remove(path, ec);  // Empty: nothing of the claim's is lost.
    return made.status();
  }
  client::EventRecorder events(client_, "rancher.io/local-path_" + node_name_);
  events.Record(claim, "Normal", "ProvisioningSucceeded",
                fmt::format("Successfully provisioned volume {}", volume_name));
  spdlog::info("local-path: volume {} for {}/{} at {}", volume_name, ns, name, path);
  return Status::Ok();
}

Status LocalPathProvisioner::Reclaim(const json::value& volume) {
  std::string name(api::GetString(volume, {"metadata", "name"}));
  std::string path(api::GetString(volume, {"spec", "hostPath", "path"}));
  // Only a directory of its own: under the storage directory, named for the volume.
  std::error_code ec;
  fs::path base = fs::weakly_canonical(dir_, ec);
  fs::path target = fs::weakly_canonical(path, ec);
  auto rel = target.lexically_relative(base);
  bool own = !ec && !rel.empty() && *rel.begin() != ".." &&
             std::distance(rel.begin(), rel.end()) == 1 && rel.string().starts_with(name + "_");
  if (!own) {
    return MakeStatus(Code::kInvalidArgument, "{} is not a directory local-path made under {}",
                      path, dir_);
  }
  fs::remove_all(target, ec);
  if (ec) return MakeStatus(Code::kInternal, "remove {}: {}", path, ec.message());
  Status s = client_->Delete(Volumes(), "", name);
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  spdlog::info("local-path: volume {} deleted with {}", name, path);
  return Status::Ok();
}

}  // namespace kiso::agent
