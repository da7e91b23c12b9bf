// EndpointSliceController: discovery.k8s.io/v1 EndpointSlices for every
// Service (kube-controller-manager's endpointslice controller, which
// kube-proxy and CoreDNS read): for a Service with a selector, the selected
// pods, at most 100 endpoints a slice, one set of slices per distinct port
// list, each endpoint with its ready/serving/terminating conditions, node,
// hostname and pod; for a Service without one, its Endpoints mirrored
// (the endpointslicemirroring controller's part) unless they are labelled
// endpointslice.kubernetes.io/skip-mirror. Slices are named
// "<service>-<random>", labelled kubernetes.io/service-name and owned by the
// Service. kiso's addition: the pods' kiso.dev/weight annotations, for
// weighted round robin, in the slice's kiso.dev/weights annotation.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "client/slice_index.h"
#include "controller/controller.h"

namespace kiso::controller {

class EndpointSliceController : public Controller {
 public:
  explicit EndpointSliceController(client::Client* client,
                                   client::SharedInformers* shared = nullptr);
  ~EndpointSliceController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  client::Informer* services_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* endpoints_ = nullptr;
  client::Informer* slices_ = nullptr;
  Expectations expectations_;
  client::SliceIndex slice_index_;  // A Service's slices.
};

}  // namespace kiso::controller
