// NodeRestriction: what a node's credentials may write, beyond what the Node
// authorizer lets them reach — only its own Node (not another's, created or
// changed), and no pods but mirror pods (kiso's agents make none). Tokens for
// pods are limited in the TokenRequest handler (authn/reviews.cc).
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/admission/plugins.h"
#include "apiserver/authz/node_authorizer.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

class NodeRestriction : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "NodeRestriction"; }

  api::ApiStatus Validate(const AdmissionRequest& r, const json::object& obj) const override {
    const UserInfo* user = r.user();
    if (!user || (r.operation != "CREATE" && r.operation != "UPDATE")) return std::nullopt;
    std::string node = NodeOf(*user);
    if (node.empty()) return std::nullopt;
    const Target& t = *r.target;
    std::string name(api::GetString(obj, {"metadata", "name"}));
    if (!t.type->group.empty()) return std::nullopt;
    if (t.type->plural == "nodes" && name != node) {
      return AdmissionForbidden(
          t, name, fmt::format("node {:?} is not allowed to modify node {:?}", node, name));
    }
    if (t.type->plural == "pods" && t.subresource.empty() && r.operation == "CREATE" &&
        api::GetString(obj, {"metadata", "annotations", "kubernetes.io/config.mirror"}).empty()) {
      return AdmissionForbidden(
          t, name,
          fmt::format("pod does not have \"kubernetes.io/config.mirror\" annotation, node {:?} "
                      "can only create mirror pods",
                      node));
    }
    return std::nullopt;
  }
};

}  // namespace

std::unique_ptr<AdmissionPlugin> NewNodeRestriction() {
  return std::make_unique<NodeRestriction>();
}

}  // namespace kiso::apiserver
