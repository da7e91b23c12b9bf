// Validation and defaulting: the seed's type safety (07.1.1). Every write is
// defaulted as the real API server defaults it (pkg/apis/*/v1/defaults.go)
// and validated (pkg/apis/*/validation); a failing object is refused with the
// causes, and nothing is stored.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/errors.h"
#include "api/resources.h"

namespace kiso::api {

// Fills in the defaults the real API server applies to `obj` of `type`.
void ApplyDefaults(const ResourceType& type, boost::json::object& obj);

// What the API server adds to a Job at creation (pkg/registry/batch/job
// PrepareForCreate): unless spec.manualSelector, a selector on the Job's uid and
// the matching labels on its pod template. REQUIRES: metadata.uid and name set.
void PrepareJobForCreate(boost::json::object& job);

// The causes that make `obj` invalid; empty when it is valid. `old` is the
// stored object on update (immutable fields), nullptr on create.
std::vector<Cause> Validate(const ResourceType& type, const boost::json::object& obj,
                            const boost::json::object* old);

// Name rules (k8s.io/apimachinery/pkg/util/validation): the error text, or "" when valid.
std::string CheckDns1123Subdomain(std::string_view value);
std::string CheckPathSegmentName(std::string_view value);
std::string CheckDns1123Label(std::string_view value);
std::string CheckDns1035Label(std::string_view value);

// Whether `token` has a bootstrap token's form: [a-z0-9]{6}.[a-z0-9]{16}
// (the authenticator reads it; an agent joining with one asks for its certificate).
bool IsBootstrapToken(std::string_view token);

// A pod's quality-of-service class from its spec (upstream's GetPodQOS, over
// cpu and memory): "BestEffort" when no container asks for either (a zero
// quantity is no ask), "Guaranteed" when every container has both limits and
// requests equal to them (requests missing count as their limits, as
// defaulting makes them), else "Burstable".
std::string PodQosClass(const boost::json::object& spec);

// Parses a resource.Quantity ("100m", "1Gi", "2", "1e3") into milli-units.
// False when the text is not a quantity.
bool ParseQuantityMilli(std::string_view text, long double* milli);
// A quantity as an int64, saturated (a huge quantity is the largest int64, not
// undefined behaviour; NaN is 0).
int64_t SaturatedInt64(long double value);
inline constexpr std::string_view kQuantityError =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

}  // namespace kiso::api
