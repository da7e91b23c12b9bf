// EndpointSlices as their consumers (the service proxy, the cluster DNS, the
// EndpointSlice controller) read them. SliceIndex: which slices belong to
// which Service ("ns/name", from the kubernetes.io/service-name label), kept
// from an EndpointSlice informer's events, so that a Service's slices are
// found without a scan of every slice. Thread-safe.
#pragma once

#include <boost/json/value.hpp>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace kiso::client {

// One endpoint of a slice: its first address (the API says a slice's
// addresses are fungible), its conditions with upstream's meaning of unset
// ones (ready: true; serving: as ready; terminating: false), and kiso's
// weight (the slice's kiso.dev/weights annotation; 1 when it names none).
struct SliceEndpoint {
  std::string ip;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::string node_name;
  std::string hostname;
  int64_t weight = 1;
};

// The endpoints of an IPv4 slice (none for other address types).
std::vector<SliceEndpoint> EndpointsOf(const boost::json::value& slice);

class SliceIndex {
 public:
  // Records an informer event; returns the Services it concerns (the one the
  // slice belongs to, and the one it belonged to before, if another).
  std::vector<std::string> Observe(const boost::json::value* old, const boost::json::value& slice,
                                   bool deleted);
  // The names of Service `key`'s slices (in its namespace).
  std::set<std::string> Of(const std::string& key) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::set<std::string>> slices_;  // guarded by mu_
};

}  // namespace kiso::client
