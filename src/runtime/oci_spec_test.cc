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

// The names the profile's first rule allows, whatever their arguments.
std::vector<std::string> Allowed(const json::value& profile) {
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

TEST(SeccompTest, RuntimeDefaultIsAnAllowListThatCapabilitiesExtend) {
  auto plain = RuntimeDefaultSeccomp({"CAP_CHOWN"});
  EXPECT_EQ(plain.at("defaultAction"), "SCMP_ACT_ERRNO");  // Anything not listed: EPERM.
  EXPECT_EQ(plain.at("defaultErrnoRet"), 1);
  auto allowed = Allowed(plain);
  for (const char* name : {"read", "openat", "execve", "futex", "epoll_wait", "accept4",
                           "faccessat2", "chroot", "setuid"}) {
    EXPECT_TRUE(Has(allowed, name)) << name;
  }
  for (const char* name : {"mount",         "umount2",          "unshare",     "setns",
                           "ptrace",        "process_vm_readv", "kcmp",        "keyctl",
                           "add_key",       "init_module",      "reboot",      "bpf",
                           "clock_settime", "io_uring_setup",   "userfaultfd", "kexec_load",
                           "clone3",        "personality",      "socket",      "clone"}) {
    EXPECT_FALSE(Has(allowed, name)) << name;  // The last three only with their arguments.
  }
  // clone without a namespace flag; clone3 answers ENOSYS; personality's safe values; no vsock.
  bool clone = false, clone3 = false, vsock = false;
  int personalities = 0;
  for (const auto& rule : plain.at("syscalls").as_array()) {
    const auto& names = rule.at("names").as_array();
    if (names.size() != 1) continue;
    if (names[0] == "clone") {
      const auto& arg = rule.at("args").at(0);
      clone = rule.at("action") == "SCMP_ACT_ALLOW" && arg.at("op") == "SCMP_CMP_MASKED_EQ" &&
              arg.at("value") == 0x7E020000 && arg.at("valueTwo") == 0;
    }
    if (names[0] == "clone3") clone3 = rule.at("errnoRet") == 38;
    if (names[0] == "personality") ++personalities;
    if (names[0] == "socket") vsock = rule.at("args").at(0).at("op") == "SCMP_CMP_NE";
  }
  EXPECT_TRUE(clone && clone3 && vsock);
  EXPECT_EQ(personalities, 5);

  auto admin = RuntimeDefaultSeccomp({"CAP_SYS_ADMIN", "CAP_SYS_TIME", "CAP_SYS_PTRACE"});
  auto more = Allowed(admin);
  for (const char* name : {"mount", "unshare", "clone", "clone3", "clock_settime", "ptrace"}) {
    EXPECT_TRUE(Has(more, name)) << name;
  }
  EXPECT_FALSE(Has(more, "reboot"));  // CAP_SYS_BOOT's.
  EXPECT_FALSE(Has(more, "keyctl"));  // Never given back.
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
