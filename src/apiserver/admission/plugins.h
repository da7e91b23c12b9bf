// The admission plugins, one per file in this folder.
#pragma once

#include <memory>

#include "apiserver/admission/admission.h"

namespace kiso::apiserver {

// Containers' default limits and requests, and their bounds, from LimitRanges.
std::unique_ptr<AdmissionPlugin> NewLimitRanger();
// A pod's service account (it must exist) and its API credentials volume.
std::unique_ptr<AdmissionPlugin> NewServiceAccountAdmission();
// A pod's priority from its PriorityClass (or the global default).
std::unique_ptr<AdmissionPlugin> NewPriorityAdmission();
// A pod's RuntimeClass: its overhead, and its scheduling constraints merged.
std::unique_ptr<AdmissionPlugin> NewRuntimeClassAdmission();
// Roles and bindings grant only what their writer holds (or may escalate or bind).
std::unique_ptr<AdmissionPlugin> NewRbacEscalation();
// Admission webhooks (admissionregistration.k8s.io/v1), mutating and validating.
std::unique_ptr<AdmissionPlugin> NewMutatingWebhooks();
std::unique_ptr<AdmissionPlugin> NewValidatingWebhooks();
// CertificateSigningRequests: who asks, a valid request, approve/sign rights.
std::unique_ptr<AdmissionPlugin> NewCertificateSigning();
// A node's credentials write only its own Node (and no pods but mirror pods).
std::unique_ptr<AdmissionPlugin> NewNodeRestriction();
// An Ingress without a class gets the default IngressClass.
std::unique_ptr<AdmissionPlugin> NewDefaultIngressClass();
// Storage (storage.cc): a claim without a class gets the default StorageClass;
// claims and volumes get their in-use protection finalizers; a claim grows only
// when bound and its class allows expansion.
std::unique_ptr<AdmissionPlugin> NewDefaultStorageClass();
std::unique_ptr<AdmissionPlugin> NewStorageObjectInUseProtection();
std::unique_ptr<AdmissionPlugin> NewPersistentVolumeClaimResize();

}  // namespace kiso::apiserver
