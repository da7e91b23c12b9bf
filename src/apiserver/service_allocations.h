// What a Service holds besides itself: its cluster IP, from the service range
// (--service-cidr; K3s' default 10.43.0.0/16), and its node ports, from 30000-32767. Each is a
// store key (/kiso/serviceips/<ip>, /kiso/nodeports/<port>) created in the
// transaction that stores the Service and deleted in the one that deletes it
// or changes it not to need the value any more, so two Services can never hold
// the same address or port, and nothing is held after its Service is gone.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "api/errors.h"
#include "api/resources.h"
#include "common/cidr.h"
#include "store/store.h"

namespace kiso::apiserver {

// One value a write takes: its key, and where in the Service it is.
struct Claim {
  std::string key;
  int port_index = -1;       // spec.ports[i].nodePort; kClusterIp or kHealthCheck otherwise.
  bool user_chosen = false;  // The manifest named it (a taken one is then a 422).
  static constexpr int kClusterIp = -1;
  static constexpr int kHealthCheck = -2;
};

// Compares and operations a write adds to its transaction (allocations, and
// quota charges: admission/resource_quota.h).
struct Reservation {
  std::vector<store::Compare> compares;
  std::vector<store::TxnOp> ops;
  std::vector<Claim> claims;
};

// Fills what a Service being created (`old` null) or updated needs and has
// not got — spec.clusterIP(s), and node ports for NodePort and LoadBalancer
// Services — picking free values at random and keeping the values `old` held
// (upstream's patchAllocatedValues); adds the keys it takes to `out` and the
// keys `old` held that `obj` no longer needs as deletes. A no-op for other
// kinds. 422 with upstream's message for a value out of its range, or a node
// port where the type has none.
api::ApiStatus AllocateServiceValues(const Ipv4Cidr& range, const api::ResourceType& type,
                                     boost::json::object& obj, const boost::json::object* old,
                                     Reservation* out);

// After a transaction with `r`'s claims failed: 422 when a value the manifest
// named is held by another Service ("provided port is already allocated");
// otherwise each picked value that was taken meanwhile is cleared from `obj`
// (the next attempt picks again) and `*taken` says whether there was one.
api::ApiStatus RecheckClaims(store::Store* store, const api::ResourceType& type,
                             boost::json::object& obj, const Reservation& r, bool* taken);

// Store keys that belong to `obj` and are deleted with it.
std::vector<std::string> OwnedKeys(const Ipv4Cidr& range, const api::ResourceType& type,
                                   const boost::json::object& obj);

}  // namespace kiso::apiserver
