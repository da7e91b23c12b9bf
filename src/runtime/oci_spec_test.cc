#include "runtime/oci_spec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>

namespace kiso::runtime {
namespace {

namespace json = boost::json;

bool Has(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The names the profile's first (unconditional) rule refuses.
std::vector<std::string> Denied(const json::value& profile) {
  std::vector<std::string> out;
  for (const auto& n : profile.at("syscalls").at(0).at("names").as_array())
    out.emplace_back(n.as_string());
  return out;
}

TEST(CapabilitiesTest, DefaultsDropsAndAdds) {
  ContainerConfig config;
  auto plain = Capabilities(config);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->size(), 14u);
  EXPECT_TRUE(Has(*plain, "CAP_NET_RAW"));
  EXPECT_FALSE(Has(*plain, "CAP_SYS_ADMIN"));

  config.drop_caps = {"ALL"};
  config.add_caps = {"NET_BIND_SERVICE", "cap_net_admin"};
  auto narrow = Capabilities(config);
  ASSERT_TRUE(narrow.ok());
  EXPECT_EQ(*narrow, (std::vector<std::string>{"CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"}));

  config.drop_caps = {"NET_RAW"};
  config.add_caps = {};
  auto less = Capabilities(config);
  ASSERT_TRUE(less.ok());
  EXPECT_EQ(less->size(), 13u);
  EXPECT_FALSE(Has(*less, "CAP_NET_RAW"));

  config.add_caps = {"FLY"};
  auto bad = Capabilities(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown capability \"FLY\""), std::string::npos);

  ContainerConfig privileged;
  privileged.privileged = true;
  privileged.drop_caps = {"ALL"};  // Privileged wins, as in the kubelet.
  EXPECT_TRUE(Has(*Capabilities(privileged), "CAP_SYS_ADMIN"));
}

TEST(SeccompTest, RuntimeDefaultGivesBackWhatACapabilityAllows) {
  auto plain = RuntimeDefaultSeccomp({"CAP_CHOWN"});
  EXPECT_EQ(plain.at("defaultAction"), "SCMP_ACT_ALLOW");
  auto denied = Denied(plain);
  for (const char* name : {"mount", "unshare", "setns", "init_module", "reboot", "keyctl", "bpf",
                           "clock_settime", "io_uring_setup"}) {
    EXPECT_TRUE(Has(denied, name)) << name;
  }
  EXPECT_FALSE(Has(denied, "read"));
  // clone with namespace flags, and clone3 (ENOSYS), are refused too.
  size_t clone_rules = 0;
  bool clone3 = false;
  for (const auto& rule : plain.at("syscalls").as_array()) {
    const auto& names = rule.at("names").as_array();
    if (names.size() == 1 && names[0] == "clone") ++clone_rules;
    if (names.size() == 1 && names[0] == "clone3") clone3 = rule.at("errnoRet") == 38;
  }
  EXPECT_EQ(clone_rules, 7u);
  EXPECT_TRUE(clone3);

  auto admin = RuntimeDefaultSeccomp({"CAP_SYS_ADMIN", "CAP_SYS_TIME"});
  auto allowed = Denied(admin);
  EXPECT_FALSE(Has(allowed, "mount"));
  EXPECT_FALSE(Has(allowed, "clock_settime"));
  EXPECT_TRUE(Has(allowed, "reboot"));
  EXPECT_TRUE(Has(allowed, "keyctl"));  // Never given back.
  EXPECT_EQ(admin.at("syscalls").as_array().size(), 1u);
}

TEST(BuildSpecTest, SeccompFollowsTheConfig) {
  Sandbox sandbox{"s", "/run/x/net", "/run/x/ipc", "/run/x/uts"};
  ContainerConfig config;
  config.args = {"sh"};
  auto linux_of = [&](const ContainerConfig& c) {
    return BuildSpec(c, sandbox, "/rootfs", "pod", "/kiso/c").at("linux").as_object();
  };
  EXPECT_TRUE(linux_of(config).contains("seccomp"));
  ContainerConfig unconfined = config;
  unconfined.seccomp = Seccomp::kUnconfined;
  EXPECT_FALSE(linux_of(unconfined).contains("seccomp"));
  ContainerConfig privileged = config;
  privileged.privileged = true;
  EXPECT_FALSE(linux_of(privileged).contains("seccomp"));
  ContainerConfig local = config;
  local.seccomp = Seccomp::kLocalhost;
  local.seccomp_profile = R"({"defaultAction":"SCMP_ACT_LOG"})";
  EXPECT_EQ(linux_of(local).at("seccomp").at("defaultAction"), "SCMP_ACT_LOG");
  ContainerConfig no_escalation = config;
  no_escalation.no_new_privileges = true;
  auto spec = BuildSpec(no_escalation, sandbox, "/rootfs", "pod", "/kiso/c");
  EXPECT_EQ(spec.at("process").at("noNewPrivileges"), true);
  EXPECT_EQ(
      BuildSpec(config, sandbox, "/rootfs", "pod", "/kiso/c").at("process").at("noNewPrivileges"),
      false);
}

}  // namespace
}  // namespace kiso::runtime
