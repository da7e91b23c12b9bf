// SliceIndex: which EndpointSlices belong to which Service ("ns/name", from
// the kubernetes.io/service-name label), kept from an EndpointSlice
// informer's events, so that a Service's slices are found without a scan of
// every slice. Thread-safe.
#pragma once

#include <boost/json/value.hpp>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace kiso::client {

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
