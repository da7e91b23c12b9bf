// A temporary directory removed (recursively) when the object goes away.
#pragma once

#include <string>

namespace kiso::testing {

class TempDir {
 public:
  // Creates a fresh directory under $TMPDIR (or /tmp) named kiso-<tag>-XXXXXX.
  explicit TempDir(const std::string& tag = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();

}  // namespace kiso::testing
