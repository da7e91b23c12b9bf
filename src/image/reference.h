// Image references as Docker and containerd spell them: "busybox" is
// docker.io/library/busybox:latest; "127.0.0.1:5000/tools/bb@sha256:…" names
// a registry, a repository and a digest.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso::image {

struct Reference {
  std::string registry;    // "docker.io", "127.0.0.1:5000".
  std::string repository;  // "library/busybox".
  std::string tag;         // "latest" unless a digest alone was given.
  std::string digest;      // "sha256:…", or "".

  // The full, normalised form: registry/repository[:tag][@digest].
  std::string String() const;
  // registry/repository, the name images are listed under.
  std::string Name() const { return registry + "/" + repository; }
};

// Parses and normalises `text`; InvalidArgument names what is wrong.
Result<Reference> ParseReference(std::string_view text);

}  // namespace kiso::image
