// Conversion between the versions a kind is served at, as kube-apiserver's
// conversion functions do it. An object is stored at one version (the type's
// Storage(), upstream's storage version); a request at another version has
// its object converted on the way in, and every object in its answer on the
// way out. What the other version cannot express travels in annotations, as
// upstream keeps it, so that a round trip through it loses nothing.
//
// A custom kind's versions (CustomResourceDefinition conversion `None`):
// only apiVersion changes.
//
// autoscaling/v1 HorizontalPodAutoscaler ↔ autoscaling/v2: one CPU target
// (spec.targetCPUUtilizationPercentage) is a Resource metric on cpu with an
// Utilization target; other metrics, behavior, conditions and the other
// current metrics are the annotations autoscaling.alpha.kubernetes.io/
// {metrics,behavior,conditions,current-metrics} of the v1 object (metrics in
// autoscaling/v1's MetricSpec shape).
#pragma once

#include <boost/json/object.hpp>

#include "api/errors.h"
#include "api/resources.h"

namespace kiso::api {

// `obj`, at `served`'s version, into the storage version's form (apiVersion
// too). 400 for what cannot be converted (an annotation that is not the JSON it must be).
ApiStatus ConvertToStorage(const ResourceType& served, boost::json::object& obj);

// A stored object (the storage version's form) into `served`'s version. Other
// kinds and versions are left as they are.
void ConvertFromStorage(const ResourceType& served, boost::json::object& obj);

}  // namespace kiso::api
