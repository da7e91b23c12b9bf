// Admission: what kube-apiserver's admission chain does between decoding a
// write and storing it. Mutating plugins run before validation and
// defaulting; validating plugins after them, in order, the first refusal
// ending the request. Every write passes, kiso's own controllers' too (so a
// ReplicaSet's pods get their ServiceAccount token and their priority).
#pragma once

#include <boost/json/object.hpp>
#include <memory>
#include <string>
#include <vector>

#include "api/errors.h"
#include "apiserver/http/http.h"

namespace kiso::apiserver {

struct Context;
struct Target;
struct UserInfo;

struct AdmissionRequest {
  const Context* ctx = nullptr;
  const Target* target = nullptr;
  const Request* req = nullptr;
  std::string operation;                     // CREATE, UPDATE, DELETE, CONNECT.
  const boost::json::object* old = nullptr;  // UPDATE and DELETE.
  bool dry_run = false;

  const UserInfo* user() const { return req ? req->user.get() : nullptr; }
};

class AdmissionPlugin {
 public:
  virtual ~AdmissionPlugin() = default;
  virtual std::string_view name() const = 0;
  // Changes the object (CREATE, UPDATE); an error refuses the request.
  virtual api::ApiStatus Mutate(const AdmissionRequest& r, boost::json::object& obj) const {
    (void)r;
    (void)obj;
    return std::nullopt;
  }
  // Refuses the request or lets it pass. `obj` is the object to be stored
  // (for DELETE, the object being deleted).
  virtual api::ApiStatus Validate(const AdmissionRequest& r, const boost::json::object& obj) const {
    (void)r;
    (void)obj;
    return std::nullopt;
  }
};

class Admission {
 public:
  void Add(std::unique_ptr<AdmissionPlugin> plugin) { plugins_.push_back(std::move(plugin)); }
  api::ApiStatus Mutate(const AdmissionRequest& r, boost::json::object& obj) const;
  api::ApiStatus Validate(const AdmissionRequest& r, const boost::json::object& obj) const;

 private:
  std::vector<std::unique_ptr<AdmissionPlugin>> plugins_;
};

// 403 Forbidden as admission plugins refuse: `<resource> "<name>" is forbidden: <why>`.
api::ApiError AdmissionForbidden(const Target& t, const std::string& name, const std::string& why);

// The plugins kiso runs, in kube-apiserver's order: NodeRestriction, LimitRanger,
// ServiceAccount, Priority, DefaultIngressClass, DefaultStorageClass,
// StorageObjectInUseProtection, PersistentVolumeClaimResize, MutatingAdmissionWebhook;
// RBAC's escalation prevention (upstream's is in its registry),
// ValidatingAdmissionWebhook. ResourceQuota, last
// upstream, charges quotas in the transaction that stores the object
// (resource_quota.h).
std::unique_ptr<Admission> DefaultAdmission();

}  // namespace kiso::apiserver
