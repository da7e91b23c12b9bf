#include "apiserver/admission/admission.h"

#include <fmt/format.h>

#include "apiserver/admission/plugins.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

api::ApiStatus Admission::Mutate(const AdmissionRequest& r, boost::json::object& obj) const {
  for (const auto& p : plugins_) {
    if (auto err = p->Mutate(r, obj)) return err;
  }
  return std::nullopt;
}

api::ApiStatus Admission::Validate(const AdmissionRequest& r,
                                   const boost::json::object& obj) const {
  for (const auto& p : plugins_) {
    if (auto err = p->Validate(r, obj)) return err;
  }
  return std::nullopt;
}

api::ApiError AdmissionForbidden(const Target& t, const std::string& name, const std::string& why) {
  return api::Forbidden(*t.type, name, why);
}

std::unique_ptr<Admission> DefaultAdmission() {
  auto a = std::make_unique<Admission>();
  a->Add(NewNodeRestriction());
  a->Add(NewLimitRanger());
  a->Add(NewServiceAccountAdmission());
  a->Add(NewPriorityAdmission());
  a->Add(NewDefaultIngressClass());
  a->Add(NewDefaultStorageClass());
  a->Add(NewStorageObjectInUseProtection());
  a->Add(NewPersistentVolumeClaimResize());
  a->Add(NewRuntimeClassAdmission());
  a->Add(NewCertificateSigning());
  a->Add(NewMutatingWebhooks());
  a->Add(NewRbacEscalation());
  a->Add(NewValidatingWebhooks());
  return a;
}

}  // namespace kiso::apiserver
