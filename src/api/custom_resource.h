// CustomResourceDefinitions (apiextensions.k8s.io/v1): what one adds to the
// API — a kind per served version, with its structural schema, printer
// columns and subresources — and the checks a definition must pass.
#pragma once

#include <boost/json/value.hpp>
#include <memory>
#include <string>
#include <vector>

#include "api/errors.h"
#include "api/resources.h"

namespace kiso::api {

struct PrinterColumn {
  std::string name;
  std::string type;  // integer, number, string, boolean, date
  std::string format;
  std::string description;
  std::string json_path;  // ".spec.replicas"
  int priority = 0;
};

struct CustomResourceInfo {
  std::string crd_name;         // "crontabs.stable.example.com"
  std::string storage_version;  // The version objects are stored in.
  // The version's openAPIV3Schema (null: none, as for a preserve-everything schema).
  std::shared_ptr<const boost::json::value> schema;
  std::vector<PrinterColumn> columns;  // Beside NAME: additionalPrinterColumns, or Age.
  // The scale subresource's paths, when it has one (".spec.replicas").
  std::string spec_replicas_path;
  std::string status_replicas_path;
  std::string label_selector_path;
  // The definition is being deleted: its objects are served, no new one is created.
  bool terminating = false;
  // Identifies the definition this type came from (PublishCustomResources).
  std::string fingerprint;
};

inline constexpr std::string_view kCrdCleanupFinalizer =
    "customresourcecleanup.apiextensions.k8s.io";

// The kinds `crd` serves (one per served version). Empty unless `crd` is a
// valid definition.
std::vector<ResourceType> CustomResourceTypes(const boost::json::value& crd);

// A definition's fields as upstream's validation reports them.
std::vector<Cause> ValidateCrd(const boost::json::object& crd);

// Defaults of a definition (names.singular, names.listKind, conversion).
void DefaultCrd(boost::json::object& crd);

// Whether `crd` has the condition `type` with status True.
bool CrdCondition(const boost::json::value& crd, std::string_view type);

// The value at a simple JSONPath (".spec.replicas", ".metadata.labels.app",
// ".spec.items[0].name"), or nullptr.
const boost::json::value* AtJsonPath(const boost::json::value& obj, std::string_view path);

}  // namespace kiso::api
