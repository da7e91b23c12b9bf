#include "support/proc.h"

#include <fstream>
#include <string>

namespace kiso::testing {

double RssMb(pid_t pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/status")
                            : "/proc/" + std::to_string(pid) + "/status");
  std::string word;
  while (in >> word) {
    if (word == "VmRSS:") {
      double kb = 0;
      in >> kb;
      return kb / 1024;
    }
  }
  return 0;
}

double SmapsMb(pid_t pid, const std::string& field) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/smaps_rollup")
                            : "/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string word;
  while (in >> word) {
    if (word == field + ":") {
      double kb = 0;
      in >> kb;
      return kb / 1024;
    }
  }
  return 0;
}

double PrivateMb(pid_t pid) {
  return SmapsMb(pid, "Private_Clean") + SmapsMb(pid, "Private_Dirty");
}

}  // namespace kiso::testing
