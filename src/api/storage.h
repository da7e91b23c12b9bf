// The names storage's parts agree on: the annotations and finalizers the
// scheduler, the PV controller, admission and the node's provisioner read
// and write, and a claim's class.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace kiso::api {

// Set by the scheduler on a WaitForFirstConsumer claim: the node its first pod goes to.
inline constexpr std::string_view kSelectedNodeAnnotation = "volume.kubernetes.io/selected-node";
// Set by the PV controller on a claim its class's provisioner is to serve.
inline constexpr std::string_view kStorageProvisionerAnnotation =
    "volume.kubernetes.io/storage-provisioner";
// Set on a volume by the provisioner that made it (which deletes it under reclaim Delete).
inline constexpr std::string_view kProvisionedByAnnotation = "pv.kubernetes.io/provisioned-by";
inline constexpr std::string_view kPvcProtectionFinalizer = "kubernetes.io/pvc-protection";
inline constexpr std::string_view kPvProtectionFinalizer = "kubernetes.io/pv-protection";

// The claim's class: spec.storageClassName, or the deprecated
// volume.beta.kubernetes.io/storage-class annotation; "" for none.
std::string ClaimClass(const boost::json::value& claim);

}  // namespace kiso::api
