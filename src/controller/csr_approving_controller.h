// CertificateApprovingController: approves node client certificate requests
// (signer kubernetes.io/kube-apiserver-client-kubelet, subject
// CN=system:node:<name>, O=system:nodes, client-auth usages, no alternative
// names) when a SubjectAccessReview says their requester may create
// certificatesigningrequests/nodeclient (a bootstrap token, by default) or,
// for a node asking for its own name, /selfnodeclient (kube-controller-
// manager's csrapproving controller). The signing controller then signs them.
#pragma once

#include <functional>

#include "controller/controller.h"

namespace kiso::controller {

// A certificate request's subject: CN, O, and whether it names alternative names.
struct CsrSubject {
  std::string common_name;
  std::vector<std::string> organizations;
  bool alternative_names = false;
};
using CsrReader = std::function<Result<CsrSubject>(std::string_view pem)>;

class CertificateApprovingController : public Controller {
 public:
  CertificateApprovingController(client::Client* client, CsrReader read,
                                 client::SharedInformers* shared = nullptr);
  ~CertificateApprovingController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  // Whether the requester of `csr` may create certificatesigningrequests/`subresource`.
  Result<bool> RequesterMay(const boost::json::value& csr, std::string_view subresource);

  CsrReader read_;
  client::Informer* csrs_ = nullptr;
};

}  // namespace kiso::controller
