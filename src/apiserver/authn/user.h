// Who a request comes from, as authentication found it (Kubernetes'
// user.Info; authentication.k8s.io/v1 UserInfo on the wire).
#pragma once

#include <boost/json/object.hpp>
#include <map>
#include <string>
#include <vector>

namespace kiso::apiserver {

struct UserInfo {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;

  bool InGroup(std::string_view group) const {
    for (const auto& g : groups) {
      if (g == group) return true;
    }
    return false;
  }
  // authentication.k8s.io/v1 UserInfo.
  boost::json::object ToJson() const;
  static UserInfo FromJson(const boost::json::object& obj);
};

// Groups every authenticated user is in, and the one that may do anything.
inline constexpr std::string_view kAuthenticatedGroup = "system:authenticated";
inline constexpr std::string_view kUnauthenticatedGroup = "system:unauthenticated";
inline constexpr std::string_view kMastersGroup = "system:masters";
inline constexpr std::string_view kNodesGroup = "system:nodes";
inline constexpr std::string_view kNodeUserPrefix = "system:node:";
inline constexpr std::string_view kServiceAccountPrefix = "system:serviceaccount:";

}  // namespace kiso::apiserver
