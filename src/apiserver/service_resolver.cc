#include "apiserver/service_resolver.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <random>
#include <vector>

#include "api/object.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

Result<ServiceEndpoint> ResolveServiceEndpoint(const Context& ctx, std::string_view ns,
                                               std::string_view name, int64_t port) {
  auto service = ReadFromCache(ctx, *api::FindResource("", "v1", "services"), ns, name);
  if (!service) return MakeStatus(Code::kUnavailable, "service \"{}\" not found", name);
  std::string port_name;
  bool port_found = false;
  for (const auto& p : api::GetArray(*service, {"spec", "ports"})) {
    if (api::GetInt(p, {"port"}, 0) != port) continue;
    port_name = std::string(api::GetString(p, {"name"}));
    port_found = true;
    break;
  }
  if (!port_found) {
    return MakeStatus(Code::kUnavailable, "no service port {} found for service \"{}\"", port,
                      name);
  }
  std::vector<ServiceEndpoint> ready;
  if (auto eps = ReadFromCache(ctx, *api::FindResource("", "v1", "endpoints"), ns, name)) {
    for (const auto& subset : api::GetArray(*eps, {"subsets"})) {
      int64_t target = 0;
      for (const auto& p : api::GetArray(subset, {"ports"})) {
        if (api::GetString(p, {"name"}) == port_name) target = api::GetInt(p, {"port"}, 0);
      }
      if (target <= 0) continue;
      for (const auto& a : api::GetArray(subset, {"addresses"}))
        ready.push_back({std::string(api::GetString(a, {"ip"})), static_cast<int>(target)});
    }
  }
  if (ready.empty())
    return MakeStatus(Code::kUnavailable, "service \"{}/{}\" has no ready endpoints", ns, name);
  thread_local std::minstd_rand pick{std::random_device{}()};
  return ready[pick() % ready.size()];
}

}  // namespace kiso::apiserver
