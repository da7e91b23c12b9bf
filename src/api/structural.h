// Structural schemas: the OpenAPI v3 subset each version of a
// CustomResourceDefinition declares (apiextensions.k8s.io/v1), and what the
// API server does with it for every custom object, in upstream's order:
// unknown fields pruned (or reported, for fieldValidation=Strict), defaults
// applied, the object validated. Keywords: type, properties,
// additionalProperties, items, required, enum, nullable, default, format,
// pattern (RE2, Go's regexp syntax, linear time), minimum/maximum and their
// exclusive forms, multipleOf, min/maxLength, min/maxItems, uniqueItems,
// min/maxProperties, allOf/anyOf/oneOf/not, and the x-kubernetes- extensions
// (preserve-unknown-fields, int-or-string, embedded-resource, list-type,
// list-map-keys, map-type). Every walk is bounded: a schema nests at most
// kMaxSchemaDepth deep and a validation does at most kMaxValidationSteps steps.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "api/errors.h"

namespace kiso::api {

inline constexpr int kMaxSchemaDepth = 64;
inline constexpr long kMaxValidationSteps = 1'000'000;

// Whether `schema` is a structural schema kiso can apply, as the CRD's
// validation reports it (causes under `path`, e.g.
// "spec.versions[0].schema.openAPIV3Schema").
std::vector<Cause> CheckStructural(const boost::json::value& schema, const std::string& path);

// Removes from `object` (a whole custom object) every field its schema does not
// declare; apiVersion, kind and metadata stay at the root and in embedded
// resources. Returns the removed fields' paths ("spec.foo"), in document order.
std::vector<std::string> Prune(const boost::json::value& schema, boost::json::value& object);

// Sets each absent field that has a `default` (after pruning, as upstream does).
void ApplySchemaDefaults(const boost::json::value& schema, boost::json::value& object);

// Validates `object` against `schema`; causes name the fields ("spec.replicas")
// with upstream's messages. metadata is validated by the API server, not here.
std::vector<Cause> ValidateSchema(const boost::json::value& schema,
                                  const boost::json::value& object);

}  // namespace kiso::api
