#include "image/reference.h"

#include <algorithm>
#include <cctype>

namespace kiso::image {

std::string Reference::String() const {
  std::string out = Name();
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

namespace {

bool ValidRepositoryChar(char c) {
  return std::islower(static_cast<unsigned char>(c)) ||
         std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
         c == '/';
}

}  // namespace

Result<Reference> ParseReference(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    return MakeStatus(Code::kInvalidArgument, "invalid image reference {:?}: {}", text, why);
  };
  if (text.empty()) return invalid("empty");
  Reference ref;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!ref.digest.starts_with("sha256:") || ref.digest.size() != 7 + 64 ||
        !std::all_of(ref.digest.begin() + 7, ref.digest.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
      return invalid("a digest must be sha256: and 64 hex digits");
    }
  }
  // A tag follows the last ':' after the last '/' (a ':' before it is a port).
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (ref.tag.empty() || ref.tag.size() > 128) return invalid("bad tag");
  }
  // The first component is a registry when it has a '.', a ':' or is localhost.
  size_t first = rest.find('/');
  std::string_view head = first == std::string_view::npos ? "" : rest.substr(0, first);
  if (!head.empty() && (head.find('.') != std::string_view::npos ||
                        head.find(':') != std::string_view::npos || head == "localhost")) {
    ref.registry = std::string(head);
    rest = rest.substr(first + 1);
  } else {
    ref.registry = "docker.io";
  }
  if (rest.empty()) return invalid("no repository");
  if (!std::all_of(rest.begin(), rest.end(), ValidRepositoryChar) || rest.front() == '/' ||
      rest.back() == '/') {
    return invalid("a repository has lower-case letters, digits, '.', '_', '-' and '/'");
  }
  ref.repository = std::string(rest);
  if (ref.registry == "docker.io" && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

}  // namespace kiso::image
