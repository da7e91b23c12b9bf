#include "network/overlay/backend.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/cidr.h"
#include "network/rtnl.h"

namespace kiso::network::overlay {

namespace {

constexpr int kVxlanOverhead = 50;  // Outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.

const std::string* Annotation(const RemoteNode& n, const char* key) {
  auto it = n.annotations.find(key);
  return it == n.annotations.end() || it->second.empty() ? nullptr : &it->second;
}

// The routes `desired` wants, the old ones of kiso's protocol removed.
Status Reconcile(Rtnl& rtnl, const std::vector<Route>& desired) {
  KISO_ASSIGN_OR_RETURN(auto present, rtnl.KisoRoutes());
  Status first;
  for (const auto& r : present) {
    bool wanted = std::any_of(desired.begin(), desired.end(),
                              [&](const Route& d) { return d.dst == r.dst && d.via == r.via; });
    if (!wanted) {
      Status s = rtnl.DeleteRoute(r);
      if (!s.ok() && s.code() != Code::kNotFound && first.ok()) first = s;
    }
  }
  for (const auto& r : desired) {
    Status s = rtnl.ReplaceRoute(r);
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

class Base : public OverlayBackend {
 public:
  Base(OverlayOptions o, Ipv4Cidr range, int underlay_mtu)
      : options_(std::move(o)), range_(range), underlay_mtu_(underlay_mtu) {}

 protected:
  // The remotes of this backend with a range and an address; the others named in `skipped`.
  std::vector<RemoteNode> Usable(const std::vector<RemoteNode>& remotes, std::string* skipped) {
    std::vector<RemoteNode> out;
    for (const auto& n : remotes) {
      const std::string* backend = Annotation(n, kBackendAnnotation);
      const std::string* ip = Annotation(n, kPublicIpAnnotation);
      if (n.pod_cidr.empty() || !ip || !backend) continue;  // Not ready yet: no news.
      if (*backend != name() || !Ipv4Cidr::Parse(n.pod_cidr).ok()) {
        *skipped +=
            fmt::format("{}{} ({} {})", skipped->empty() ? "" : ", ", n.name, *backend, n.pod_cidr);
        continue;
      }
      out.push_back(n);
    }
    return out;
  }

  OverlayOptions options_;
  Ipv4Cidr range_;
  int underlay_mtu_;
};

class HostGw : public Base {
 public:
  using Base::Base;
  std::string_view name() const override { return "host-gw"; }
  std::map<std::string, std::string> Annotations() const override {
    return {{kBackendAnnotation, "host-gw"}, {kPublicIpAnnotation, options_.public_ip}};
  }
  int PodMtu() const override { return underlay_mtu_; }
  Status Sync(const std::vector<RemoteNode>& remotes) override {
    std::string skipped;
    std::vector<Route> routes;
    for (const auto& n : Usable(remotes, &skipped))
      routes.push_back({n.pod_cidr, *Annotation(n, kPublicIpAnnotation), 0, false});
    KISO_ASSIGN_OR_RETURN(auto rtnl, Rtnl::Open());
    KISO_RETURN_IF_ERROR(Reconcile(rtnl, routes));
    if (!skipped.empty())
      return MakeStatus(Code::kInvalidArgument, "nodes of another backend: {}", skipped);
    return Status::Ok();
  }
};

class Vxlan : public Base {
 public:
  Vxlan(OverlayOptions o, Ipv4Cidr range, int underlay_mtu)
      : Base(std::move(o), range, underlay_mtu) {
    // The device's MAC from the node's range: stable across restarts, and
    // published before the device exists (it is made when a second node comes).
    mac_ = MacOf(range_.base);
  }
  std::string_view name() const override { return "vxlan"; }
  std::map<std::string, std::string> Annotations() const override {
    return {{kBackendAnnotation, "vxlan"},
            {kPublicIpAnnotation, options_.public_ip},
            {kVtepMacAnnotation, FormatMac(mac_)}};
  }
  int PodMtu() const override { return underlay_mtu_ - kVxlanOverhead; }
  Status Sync(const std::vector<RemoteNode>& remotes) override {
    std::string skipped;
    auto usable = Usable(remotes, &skipped);
    KISO_ASSIGN_OR_RETURN(auto rtnl, Rtnl::Open());
    std::vector<Route> routes;
    if (!usable.empty()) {
      // The device, the first time another node is there. Its address: the
      // range's first (network) address, as flannel's .0/32.
      KISO_ASSIGN_OR_RETURN(int index, rtnl.EnsureVxlan({options_.device, 1, options_.public_ip,
                                                         8472, mac_, PodMtu()}));
      KISO_RETURN_IF_ERROR(rtnl.AddAddress(index, FormatIpv4(range_.base), 32));
      for (const auto& n : usable) {
        Mac mac{};
        const std::string* text = Annotation(n, kVtepMacAnnotation);
        if (!text || !ParseMac(*text, &mac)) {
          skipped += fmt::format("{}{} (no VXLAN MAC)", skipped.empty() ? "" : ", ", n.name);
          continue;
        }
        auto remote = Ipv4Cidr::Parse(n.pod_cidr);
        const std::string vtep = FormatIpv4(remote->base);
        KISO_RETURN_IF_ERROR(rtnl.ReplaceNeighbour(index, vtep, mac));
        KISO_RETURN_IF_ERROR(rtnl.ReplaceFdb(index, mac, *Annotation(n, kPublicIpAnnotation)));
        routes.push_back({n.pod_cidr, vtep, index, true});
      }
    }
    KISO_RETURN_IF_ERROR(Reconcile(rtnl, routes));
    if (!skipped.empty()) return MakeStatus(Code::kInvalidArgument, "nodes skipped: {}", skipped);
    return Status::Ok();
  }

 private:
  Mac mac_{};
};

}  // namespace

Result<std::unique_ptr<OverlayBackend>> CreateOverlay(const OverlayOptions& o) {
  KISO_ASSIGN_OR_RETURN(auto range, Ipv4Cidr::Parse(o.pod_cidr));
  if (!ParseIpv4(o.public_ip))
    return MakeStatus(Code::kInvalidArgument, "{:?} is not the node's IPv4 address", o.public_ip);
  int mtu = 1500;
  if (auto device = DeviceOf(o.public_ip); device.ok()) mtu = device->second;
  if (o.backend == "vxlan") return std::unique_ptr<OverlayBackend>(new Vxlan(o, range, mtu));
  if (o.backend == "host-gw") return std::unique_ptr<OverlayBackend>(new HostGw(o, range, mtu));
  return MakeStatus(Code::kInvalidArgument, "unknown network backend {:?} (vxlan, host-gw, none)",
                    o.backend);
}

void ResetOverlay(const std::string& device, std::vector<std::string>* removed,
                  std::vector<std::string>* failed) {
  auto rtnl = Rtnl::Open();
  if (!rtnl.ok()) {
    failed->push_back(rtnl.status().ToString());
    return;
  }
  if (auto routes = rtnl->KisoRoutes(); routes.ok()) {
    for (const auto& r : *routes) {
      Status s = rtnl->DeleteRoute(r);
      (s.ok() ? removed : failed)
          ->push_back(s.ok() ? fmt::format("route {} via {}", r.dst, r.via) : s.ToString());
    }
  }
  Status s = rtnl->DeleteLink(device);
  if (s.ok()) {
    removed->push_back("VXLAN device " + device);
  } else if (s.code() != Code::kNotFound) {
    failed->push_back(s.ToString());
  }
}

}  // namespace kiso::network::overlay
