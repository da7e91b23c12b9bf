// The template history of a StatefulSet or DaemonSet as ControllerRevisions
// (upstream's controller history, what `kubectl rollout history|undo` reads
// and applies): one revision per distinct pod template, named
// <owner>-<template hash>, labelled with the template's labels (the owner's
// selector finds them) and carrying the owner's annotations (change-cause);
// its data is the patch that restores the template,
// {"spec":{"template":{…,"$patch":"replace"}}}; its number orders the
// templates by when each was last made current.
#pragma once

#include <boost/json/value.hpp>
#include <set>
#include <string>
#include <vector>

#include "client/client.h"
#include "common/status.h"

namespace kiso::controller {

struct Revision {
  std::string name;
  int64_t number = 0;
  boost::json::value data;  // {"spec":{"template":…}}
};

// The name of `owner`'s revision of the template with `hash`.
std::string RevisionName(std::string_view owner, std::string_view hash);
// The patch that restores `owner`'s current template.
boost::json::value RevisionData(const boost::json::value& owner);
// The pod template a revision restores (null when its data has none).
const boost::json::value* RevisionTemplate(const Revision& r);
// `owner`'s revisions among `revisions` (ControllerRevisions, as a cache
// lists them), by number, oldest first.
std::vector<Revision> OwnedRevisions(const std::vector<boost::json::value>& revisions,
                                     const boost::json::value& owner);
// The revision of `owner`'s current template, made the newest: created as
// <owner>-<hash> when no revision holds the template, or renumbered when an
// older one does (a rollback). `history` is OwnedRevisions' answer and is
// updated. `kind` is the owner's kind (apps/v1).
Result<Revision> EnsureRevision(client::Client* client, const boost::json::value& owner,
                                std::string_view kind, const std::string& hash,
                                std::vector<Revision>& history);
// Deletes the oldest revisions beyond `limit`, never one named in `keep`.
Status TruncateHistory(client::Client* client, std::string_view ns,
                       const std::vector<Revision>& history, const std::set<std::string>& keep,
                       int64_t limit);

}  // namespace kiso::controller
