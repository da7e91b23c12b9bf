// The pods a Service selects, as its endpoints: what the Endpoints and the
// EndpointSlice controllers both publish, worked out once.
#pragma once

#include <boost/json/value.hpp>
#include <memory>
#include <string>
#include <vector>

namespace kiso::controller {

// Objects as an informer shares them (client::Informer::Items).
using SharedObjects = std::vector<std::shared_ptr<const boost::json::value>>;

struct PodEndpoint {
  std::string ip;
  bool ready = false;        // Counts for traffic (or the Service publishes not-ready addresses).
  bool serving = false;      // The pod's readiness, whether or not it is terminating.
  bool terminating = false;  // Deletion has begun.
  std::string node_name;
  std::string hostname;  // spec.hostname, when spec.subdomain is the Service's name.
  boost::json::object target_ref;
  boost::json::array ports;  // [{name, port, protocol}], the Service's ports resolved on the pod.
  int64_t weight = 1;        // The pod's kiso.dev/weight annotation (weighted round robin).
};

// Whether the Service's selector (non-empty) selects the pod.
bool Selects(const boost::json::value& service, const boost::json::value& pod);

// Keys of the Services among `services` that select the pod now, or selected
// it as `old` (a pod event requeues them).
std::vector<std::string> ServicesSelecting(const SharedObjects& services,
                                           const boost::json::value* old,
                                           const boost::json::value& pod);

// The endpoints of `service` among `pods` (any namespace; only its own count), in
// the order of `pods`: each selected pod with an address, terminating ones
// included (upstream publishes them as not ready, serving per readiness).
std::vector<PodEndpoint> SelectedEndpoints(const boost::json::value& service,
                                           const SharedObjects& pods);

// The weight a pod's kiso.dev/weight annotation gives (1 when unset or not a
// positive integer; admission refuses those).
int64_t PodWeight(const boost::json::value& pod);

}  // namespace kiso::controller
