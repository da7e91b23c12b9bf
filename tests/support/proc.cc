#include "support/proc.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace kiso::testing {

namespace {

// A number from /proc/PID/status ("VmRSS:", "Threads:"); 0 if it cannot be read.
double StatusField(pid_t pid, const std::string& field) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/status")
                            : "/proc/" + std::to_string(pid) + "/status");
  std::string word;
  while (in >> word) {
    if (word == field) {
      double value = 0;
      in >> value;
      return value;
    }
  }
  return 0;
}

}  // namespace

double RssMb(pid_t pid) { return StatusField(pid, "VmRSS:") / 1024; }

int Threads(pid_t pid) { return static_cast<int>(StatusField(pid, "Threads:")); }

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

double CpuMs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  // Fields after the command (which may hold spaces) end with ')': utime and
  // stime are the 14th and 15th of the line, the 12th and 13th after it.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 1; i <= 13 && rest >> field; ++i) {
    if (i == 12) utime = std::stod(field);
    if (i == 13) stime = std::stod(field);
  }
  return (utime + stime) * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double PrivateMb(pid_t pid) {
  return SmapsMb(pid, "Private_Clean") + SmapsMb(pid, "Private_Dirty");
}

}  // namespace kiso::testing
