// What kube-apiserver warns about in an object it accepts (its strategies'
// WarningsOnCreate and WarningsOnUpdate): node labels deprecated in a pod
// spec's nodeSelector and node affinity, annotations that no longer do
// anything, deprecated volume types (pods and every pod template), and
// Ingress's class annotation. Each is the text of one `Warning` header, in
// upstream's words.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "api/resources.h"

namespace kiso::api {

// The warnings for `obj`; on an update (`old` set) only those the old object
// did not already earn.
std::vector<std::string> WarningsFor(const ResourceType& type, const boost::json::object& obj,
                                     const boost::json::object* old);

}  // namespace kiso::api
