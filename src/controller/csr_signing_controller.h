// CertificateSigningController: signs approved CertificateSigningRequests of
// the kube-apiserver client signers (kubernetes.io/kube-apiserver-client and
// kube-apiserver-client-kubelet) with the cluster CA, writing
// status.certificate (kube-controller-manager's csrsigning controller). A
// request it cannot sign gets a Failed condition saying why. Validity: the
// request's expirationSeconds, else a year.
#pragma once

#include <functional>

#include "controller/controller.h"

namespace kiso::controller {

// Signs a PEM certificate request for `usages`, valid `seconds`: the PEM certificate.
using CsrSigner = std::function<Result<std::string>(
    std::string_view pem, const std::vector<std::string>& usages, int64_t seconds)>;

class CertificateSigningController : public Controller {
 public:
  CertificateSigningController(client::Client* client, CsrSigner sign,
                               client::SharedInformers* shared = nullptr);
  ~CertificateSigningController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  CsrSigner sign_;
  client::Informer* csrs_ = nullptr;
};

}  // namespace kiso::controller
