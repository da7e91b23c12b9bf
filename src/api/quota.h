// ResourceQuota's arithmetic (upstream's quota evaluators), shared by the
// admission plugin that charges a quota before an object is stored and the
// controller that recounts what a namespace uses:
//   - what one object uses: a pod its count and its compute requests and
//     limits (while it is not terminal), a Service its count, node ports and
//     load balancers, a claim its count and storage, and any object
//     `count/<resource>[.<group>]`;
//   - which quotas apply to it: a quota's scopes (Terminating, NotTerminating,
//     BestEffort, NotBestEffort, PriorityClass) and scopeSelector select pods;
//     a quota with scopes applies to nothing else;
//   - quantities as upstream prints them (500m, 1Gi, 2).
#pragma once

#include <boost/json/object.hpp>
#include <map>
#include <string>
#include <vector>

#include "api/resources.h"

namespace kiso::api {

// Resource name → amount in milli-units (a count of 2 is 2000).
using ResourceList = std::map<std::string, long double, std::less<>>;

// Whether a container of initContainers is a sidecar (restartPolicy Always):
// started in order like the others, then kept running beside the app
// containers, restarted whenever it exits.
bool IsSidecar(const boost::json::value& container);

// A pod's effective requests or limits (`which`), as the scheduler, quotas
// and the kubelet count them: the app containers' sum plus every sidecar's,
// or, where more, what an init container needs beside the sidecars started
// before it; plus the pod's overhead (every resource of it for requests,
// those the pod limits for limits, as upstream's PodRequests and PodLimits).
ResourceList PodResources(const boost::json::object& pod, std::string_view which);

// What `obj` of `type` counts against a quota. A pod that has succeeded or
// failed uses nothing.
ResourceList QuotaUsage(const ResourceType& type, const boost::json::object& obj);

// Whether `quota`'s scopes select `obj` of `type`.
bool QuotaMatches(const boost::json::object& quota, const ResourceType& type,
                  const boost::json::object& obj);

// The resources a quota constrains that `type` can use: the names in its
// spec.hard that QuotaUsage of this type could report.
bool QuotaTracks(const ResourceType& type, std::string_view resource);

// The kinds whose objects use some resource of `hard` (a quota's spec.hard):
// what its controller counts. `count/<plural>.<group>` names any served kind.
std::vector<const ResourceType*> QuotaKinds(const ResourceList& hard);

// For a pod under a quota that limits compute resources: each limited
// resource the pod's containers do not all state ("limits.cpu for: web"),
// sorted; empty when every container states every one.
std::vector<std::string> QuotaMissingResources(const boost::json::object& quota,
                                               const boost::json::object& pod);

// A list of quantities (spec.hard, status.used) read as milli-units;
// entries that are not quantities are left out.
ResourceList ParseResourceList(const boost::json::value* list);

// A quantity in upstream's canonical form: milli-units when fractional
// ("500m"), else the largest binary ("Gi") or decimal ("k") suffix that
// divides it exactly, binary when `binary`.
std::string FormatQuantity(long double milli, bool binary);
// Whether a quantity's text uses a binary suffix (Ki … Ei).
bool IsBinaryQuantity(std::string_view text);
// `milli` formatted as `as_written` is (a quota's hard limit, a range's
// bound): binary when that text is; decimal otherwise, or when it is null.
std::string FormatQuantityLike(long double milli, const boost::json::value* as_written);

}  // namespace kiso::api
