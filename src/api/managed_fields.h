// metadata.managedFields and server-side apply (sigs.k8s.io/structured-merge-diff,
// simplified): which manager owns which fields, ownership moving with each
// write, and apply conflicts when a manager would change another's field.
#pragma once

#include <boost/json/value.hpp>
#include <set>
#include <string>
#include <vector>

#include "api/errors.h"
#include "api/resources.h"

namespace kiso::api {

// A set of owned fields as leaf paths ("f:spec/f:replicas",
// "f:spec/f:containers/k:{\"name\":\"x\"}/f:image"), convertible to FieldsV1.
using FieldSet = std::set<std::string>;

FieldSet FieldsOf(const ResourceType& type, const boost::json::value& obj);
boost::json::object ToFieldsV1(const FieldSet& set);
FieldSet FromFieldsV1(const boost::json::value& fields);
// ".spec.template.spec.containers[name=\"x\"].image", as conflict messages print paths.
std::string PathString(const std::string& path);

// Records an Update by `manager` that turned `old` (nullptr on create) into
// `obj`: the manager gains the fields it set or changed; others lose them.
void RecordUpdate(const ResourceType& type, const std::string& manager,
                  const boost::json::object* old, boost::json::object& obj);

// Server-side apply of `applied` by `manager` onto `live` (an empty object when
// creating). Conflicts → 409 with FieldManagerConflict causes unless `force`.
ApiStatus Apply(const ResourceType& type, const std::string& manager, bool force,
                const boost::json::object& applied, boost::json::object& live);

}  // namespace kiso::api
