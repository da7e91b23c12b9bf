// ResourceQuota admission: a write that would take a namespace past a quota's
// spec.hard is refused with upstream's 403 ("exceeded quota: q, requested:
// pods=1, used: pods=2, limited: pods=2"); one that fits charges the quotas
// it uses — their status.used grows in the same store transaction that
// stores the object, each quota compared on its revision, so two concurrent
// creates can never both take the last unit, and a create that fails charges
// nothing (upstream charges first and lets its controller correct). A pod
// under a quota on compute resources must state them ("failed quota: q: must
// specify limits.cpu for: web"); a quota whose usage its controller has not
// counted yet refuses what it limits ("status unknown for quota: q,
// resource: pods"). The ResourceQuota controller recounts usage as objects
// go (controller/resource_quota_controller.h).
#pragma once

#include <boost/json/object.hpp>

#include "api/errors.h"
#include "apiserver/service_allocations.h"

namespace kiso::apiserver {

struct Context;
struct Target;

// Checks `obj` (created, or updated from `old`) against the quotas of its
// namespace and, with `out`, adds the compares and puts that charge them.
// Without `out` (a dry run), only checks.
api::ApiStatus ChargeQuotas(const Context& ctx, const Target& t, const boost::json::object& obj,
                            const boost::json::object* old, Reservation* out);

// Whether a transaction failed because one of `compares`' revisions moved
// (a quota charged by someone else): the write is then tried again.
bool RevisionsMoved(const Context& ctx, const std::vector<store::Compare>& compares);

}  // namespace kiso::apiserver
