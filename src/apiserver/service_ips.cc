#include "apiserver/service_ips.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <random>

#include "api/object.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

// Outside /registry/: not an API object, so the watch cache never sees it.
constexpr std::string_view kPrefix = "/kiso/serviceips/";

bool InRange(std::string_view ip) {
  unsigned a, b, c, d;
  char tail;
  if (std::sscanf(std::string(ip).c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4)
    return false;
  return a == 10 && b == 43 && c < 256 && d < 256 && !(c == 0 && d == 0) && !(c == 255 && d == 255);
}

}  // namespace

api::ApiStatus AssignClusterIp(const api::ResourceType& type, json::object& obj, Reservation* out) {
  if (type.kind != "Service") return std::nullopt;
  auto& spec = api::Child(obj, "spec");
  std::string_view svc_type = api::GetString(spec, {"type"});
  if (svc_type == "ExternalName") return std::nullopt;
  std::string ip(api::GetString(spec, {"clusterIP"}));
  if (ip == "None") {
    spec["clusterIPs"] = json::array{"None"};
    return std::nullopt;
  }
  if (!ip.empty()) {
    if (!InRange(ip)) {
      return api::Invalid(type, std::string(api::GetString(obj, {"metadata", "name"})),
                          {{"FieldValueInvalid",
                            fmt::format("Invalid value: \"{}\": provided IP is not in the valid "
                                        "range. The range of valid IPs is 10.43.0.0/16",
                                        ip),
                            "spec.clusterIPs"}});
    }
    out->user_chosen = true;
  } else {
    thread_local std::mt19937 rng(std::random_device{}());
    uint32_t offset = 2 + rng() % 65532;  // .0.1 is the kubernetes Service's by convention.
    ip = fmt::format("10.43.{}.{}", offset >> 8, offset & 0xff);
  }
  spec["clusterIP"] = ip;
  spec["clusterIPs"] = json::array{json::string(ip)};
  if (!spec.contains("ipFamilies")) spec["ipFamilies"] = json::array{"IPv4"};
  if (!spec.contains("ipFamilyPolicy")) spec["ipFamilyPolicy"] = "SingleStack";
  std::string key = std::string(kPrefix) + ip;
  out->compares.push_back(store::Compare::Missing(key));
  out->ops.push_back(
      store::TxnOp::Put(key, fmt::format("{}/{}", api::GetString(obj, {"metadata", "namespace"}),
                                         api::GetString(obj, {"metadata", "name"}))));
  return std::nullopt;
}

std::vector<std::string> OwnedKeys(const api::ResourceType& type, const json::object& obj) {
  std::vector<std::string> out;
  if (type.kind != "Service") return out;
  std::string_view ip = api::GetString(obj, {"spec", "clusterIP"});
  if (InRange(ip)) out.push_back(std::string(kPrefix) + std::string(ip));
  return out;
}

}  // namespace kiso::apiserver
