// Nothing acknowledged is lost when the power goes: the SQLite store runs in a
// QEMU guest (Debian's kernel, an initramfs of busybox and store_crash_writer)
// on a virtual disk, acknowledging writes over the serial console, and QEMU
// is killed mid-flight. (QEMU emulates the CPU, TCG: this machine's /dev/kvm is
// PVM, kvm_pvm, which boots only PVM-enabled guest kernels. The disk and the
// guest's page cache, what the test is about, behave the same either way.) What the guest had in
// its page cache is gone, as in a power cut; only what reached the disk is left — and in the guest
// nothing reaches it but what is fsync'd (no background writeback, a ten-minute ext4 journal
// commit). A second boot of the guest replays the ext4 journal and copies the database out (a tar
// on a second disk); the host then checks it holds every acknowledged write (acked_writes.h).
//
// A kill -9 of the process (durability_test.cc) leaves the page cache to the
// kernel and cannot see a missing fsync; this can: a control run with the
// store's fsync turned off must lose acknowledged writes, and the test says so.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "acked_writes.h"
#include "common/process.h"
#include "store/store.h"
#include "support/oci_image.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace kiso::store {
namespace {

namespace fs = std::filesystem;

constexpr const char* kQemu = "/usr/bin/qemu-system-x86_64";

// The guest's init: modules, a disk mounted so that only fsync persists, then
// either the writer or a copy of the database onto the second disk.
constexpr const char* kInit = R"(#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.list); do insmod /lib/modules/$m; done
for f in $(cat /proc/cmdline); do case $f in kiso.*=*) eval "${f#kiso.}";; esac; done
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
echo 60000 > /proc/sys/vm/dirty_expire_centisecs
echo 90 > /proc/sys/vm/dirty_background_ratio
echo 90 > /proc/sys/vm/dirty_ratio
while [ ! -b /dev/vda ] || [ ! -b /dev/vdb ]; do sleep 0.05; done
mount -t ext4 -o commit=600 /dev/vda /mnt || echo "kiso: mount failed"
if [ "$mode" = write ]; then
  /bin/store_crash_writer sqlite:///mnt/kiso.db "$seed" $nosync
else
  cd /mnt && tar -cf /dev/vdb kiso.db* && sync
  echo "kiso: copied"
fi
poweroff -f
)";

std::string NewestKernel() {
  std::string newest;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/boot", ec)) {
    std::string name = e.path().filename();
    if (name.starts_with("vmlinuz-") && name > newest) newest = name;
  }
  return newest.empty() ? "" : newest.substr(std::string_view("vmlinuz-").size());
}

// The modules `wanted` need, dependencies first, from the kernel's modules.dep.
std::vector<std::string> ModuleOrder(const std::string& modules_dir,
                                     const std::vector<std::string>& wanted) {
  std::map<std::string, std::vector<std::string>> deps;  // "kernel/…/x.ko" → its dependencies.
  std::map<std::string, std::string> by_name;            // "x" → "kernel/…/x.ko".
  std::ifstream in(modules_dir + "/modules.dep");
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string module = line.substr(0, colon);
    std::istringstream rest(line.substr(colon + 1));
    std::string d;
    while (rest >> d) deps[module].push_back(d);
    by_name[fs::path(module).stem()] = module;
  }
  std::vector<std::string> order;
  std::set<std::string> seen;
  std::function<void(const std::string&)> visit = [&](const std::string& m) {
    if (!seen.insert(m).second) return;
    // modules.dep lists what a module needs with the deepest last.
    const auto& d = deps[m];
    for (auto it = d.rbegin(); it != d.rend(); ++it) visit(*it);
    order.push_back(m);
  };
  for (const auto& w : wanted) {
    if (by_name.contains(w)) visit(by_name[w]);
  }
  return order;
}

class PowerCutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mkfs)";
    // No /dev/kvm needed: the guest runs under TCG (above), on any machine.
    version_ = NewestKernel();
    ASSERT_FALSE(version_.empty()) << "no kernel in /boot: make deps installs linux-image-amd64";
    ASSERT_EQ(access(kQemu, X_OK), 0) << "make deps installs qemu-system-x86";
    const char* build = std::getenv("KISO_BUILD_DIR");
    std::string writer =
        std::string(build ? build : KISO_BUILD_DIR_DEFAULT) + "/tests/store/store_crash_writer";
    // The initramfs: busybox, the writer with its libraries, the modules.
    std::string root = dir_.File("initramfs");
    for (const char* d : {"bin", "proc", "sys", "dev", "mnt", "lib/modules"})
      fs::create_directories(root + "/" + d);
    fs::copy_file("/bin/busybox", root + "/bin/busybox");
    for (const char* applet :
         {"sh", "mount", "insmod", "cat", "echo", "sleep", "tar", "sync", "poweroff"}) {
      fs::create_symlink("busybox", root + "/bin/" + applet);
    }
    ASSERT_TRUE(testing::AddProgram(root, writer));
    fs::rename(root + writer, root + "/bin/store_crash_writer");
    std::string modules = "/lib/modules/" + version_;
    std::ofstream list(root + "/modules.list");
    for (const auto& m :
         ModuleOrder(modules, {"virtio_pci", "virtio_blk", "crc32c_generic", "ext4"})) {
      std::string name = fs::path(m).filename();
      fs::copy_file(fmt::format("{}/{}", modules, m), fmt::format("{}/lib/modules/{}", root, name));
      list << name << "\n";
    }
    list.close();
    testing::WriteFile(root + "/init", kInit);
    chmod((root + "/init").c_str(), 0755);
    auto cpio = RunCommand({"/bin/sh", "-c",
                            "cd " + root + " && find . | /bin/busybox cpio -o -H newc > " +
                                dir_.File("initramfs.cpio")});
    ASSERT_TRUE(cpio.ok() && cpio->exit_code == 0) << (cpio.ok() ? cpio->err : "");
  }

  // Boots the guest with `args`: the serial console's lines go to `on_line`,
  // which returns false to cut the power (QEMU killed with SIGKILL). Two
  // minutes at most. The lines it printed, whatever happened.
  std::vector<std::string> Boot(const std::string& args,
                                const std::function<bool(const std::string&)>& on_line) {
    testing::Subprocess qemu(
        {"/usr/bin/timeout",
         "-s",
         "KILL",
         "120",
         kQemu,
         "-accel",
         "tcg",
         "-cpu",
         "max",
         "-m",
         "512",
         "-smp",
         "2",
         "-nodefaults",
         "-display",
         "none",
         "-no-reboot",
         "-serial",
         "stdio",
         "-kernel",
         "/boot/vmlinuz-" + version_,
         "-initrd",
         dir_.File("initramfs.cpio"),
         "-append",
         "console=ttyS0 quiet loglevel=1 panic=-1 " + args,
         "-drive",
         "file=" + dir_.File("disk.img") + ",format=raw,if=virtio,cache=writeback",
         "-drive",
         "file=" + dir_.File("out.img") + ",format=raw,if=virtio"},
        true);
    std::vector<std::string> lines;
    std::string line;
    while (qemu.ReadLine(&line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
      if (!on_line(line)) {
        qemu.Kill(SIGKILL);  // The power cut: timeout's process group goes with it.
        (void)RunCommand({"/usr/bin/pkill", "-KILL", "-f", dir_.File("initramfs.cpio")});
        break;
      }
    }
    return lines;
  }

  // Writes in the guest until `cut_after` acknowledgements, cuts the power,
  // then copies out and opens what the disk kept. What it acknowledged is
  // added to `acked`.
  Result<std::unique_ptr<Store>> WriteAndCut(int cut_after, uint64_t seed, bool sync,
                                             AckedWrites* acked) {
    for (const char* img : {"disk.img", "out.img"}) {
      fs::remove(dir_.File(img));
      std::ofstream(dir_.File(img)).close();
      fs::resize_file(dir_.File(img), 64 << 20);
    }
    auto mkfs = RunCommand({"/usr/sbin/mkfs.ext4", "-q", "-F", dir_.File("disk.img")});
    if (!mkfs.ok() || mkfs->exit_code != 0) return Status(Code::kInternal, "mkfs.ext4 failed");
    int acks = 0;
    bool ready = false;
    auto lines = Boot(fmt::format("kiso.mode=write kiso.seed={}{}", seed,
                                  sync ? "" : " kiso.nosync=--unsafe-no-sync"),
                      [&](const std::string& line) {
                        ready |= line == "ready";
                        if (line.starts_with("put ") || line.starts_with("del ") ||
                            line.starts_with("compact ")) {
                          acked->Add(line);
                          ++acks;
                        }
                        return acks < cut_after;
                      });
    if (!ready || acks < cut_after) {
      std::string tail;
      for (size_t i = lines.size() > 20 ? lines.size() - 20 : 0; i < lines.size(); ++i)
        tail += lines[i] + "\n";
      return MakeStatus(Code::kInternal, "the guest wrote {} of {} acknowledgements:\n{}", acks,
                        cut_after, tail);
    }
    bool copied = false;
    Boot("kiso.mode=copy", [&](const std::string& line) {
      copied |= line == "kiso: copied";
      return true;
    });
    if (!copied) return Status(Code::kInternal, "the guest did not copy the database out");
    std::string out = dir_.File("restored");
    fs::remove_all(out);
    fs::create_directories(out);
    auto untar = RunCommand({"/bin/tar", "-xf", dir_.File("out.img"), "-C", out});
    if (!untar.ok() || untar->exit_code != 0) {
      // Nothing of the database reached the disk: an empty store.
      fs::remove_all(out);
      fs::create_directories(out);
    }
    return OpenStore("sqlite://" + out + "/kiso.db");
  }

  testing::TempDir dir_{"powercut"};
  std::string version_;
};

TEST_F(PowerCutTest, AcknowledgedWritesSurviveAPowerCut) {
  std::mt19937 rng(std::random_device{}());
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    AckedWrites acked;
    auto store = WriteAndCut(200 + static_cast<int>(rng() % 2000), rng(), true, &acked);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto violations = acked.Violations(**store);
    EXPECT_TRUE(violations.empty()) << ::testing::PrintToString(violations);
  }
}

// The control: the same run without the store's fsync loses acknowledged
// writes, and the check above sees it. Were this to pass unnoticed, the test
// above would prove nothing.
TEST_F(PowerCutTest, WithoutFsyncAcknowledgedWritesAreLostAndTheCheckSeesIt) {
  AckedWrites acked;
  auto store = WriteAndCut(500, 42, false, &acked);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_FALSE(acked.Violations(**store).empty());
}

}  // namespace
}  // namespace kiso::store
