// Cluster IPs for Services, from 10.43.0.0/16 (K3s' default service CIDR).
// Each allocation is a store key (/kiso/serviceips/<ip>) created in
// the same transaction as the Service and deleted with it, so two concurrent
// creates can never get the same address.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "api/errors.h"
#include "api/resources.h"
#include "store/store.h"

namespace kiso::apiserver {

struct Reservation {
  std::vector<store::Compare> compares;
  std::vector<store::TxnOp> ops;
  bool user_chosen = false;  // The manifest named the address.
};

// Fills spec.clusterIP(s) of a Service being created and returns the keys to
// reserve; a no-op for other kinds, headless ("None") and ExternalName services.
// 422 when the manifest names an address outside the range.
api::ApiStatus AssignClusterIp(const api::ResourceType& type, boost::json::object& obj,
                               Reservation* out);
// Store keys that belong to `obj` and are deleted with it.
std::vector<std::string> OwnedKeys(const api::ResourceType& type, const boost::json::object& obj);

}  // namespace kiso::apiserver
