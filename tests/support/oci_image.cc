#include "support/oci_image.h"

#include <sys/wait.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "image/blob_store.h"
#include "support/subprocess.h"

namespace kiso::testing {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

bool Run(const std::vector<std::string>& argv) {
  Subprocess p(argv, false);
  int status = p.Wait();
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

void WriteFile(const std::string& path, std::string_view data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string BuildOciArchive(const std::string& work, const std::string& rootfs,
                            const std::string& ref_name, const std::vector<std::string>& cmd,
                            const std::string& out) {
  using image::Sha256Digest;
  std::string layer_path = work + "/layer.tar.gz";
  if (!Run({"tar", "-C", rootfs, "-czf", layer_path, "."})) return "";
  std::string layer = ReadFile(layer_path);
  json::array cmd_json;
  for (const auto& c : cmd) cmd_json.emplace_back(c);
  std::string config = json::serialize(json::object{
      {"architecture", "amd64"},
      {"os", "linux"},
      {"config",
       json::object{
           {"Cmd", cmd_json},
           {"Env",
            json::array{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
           {"WorkingDir", "/"}}},
      {"rootfs", json::object{{"type", "layers"}, {"diff_ids", json::array{}}}}});
  std::string manifest = json::serialize(json::object{
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
      {"config", json::object{{"mediaType", "application/vnd.oci.image.config.v1+json"},
                              {"digest", Sha256Digest(config)},
                              {"size", config.size()}}},
      {"layers",
       json::array{json::object{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                                {"digest", Sha256Digest(layer)},
                                {"size", layer.size()}}}}});
  std::string layout = work + "/layout";
  for (const auto& blob : {layer, config, manifest}) {
    WriteFile(layout + "/blobs/sha256/" + Sha256Digest(blob).substr(7), blob);
  }
  WriteFile(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  WriteFile(
      layout + "/index.json",
      json::serialize(json::object{
          {"schemaVersion", 2},
          {"manifests",
           json::array{json::object{
               {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
               {"digest", Sha256Digest(manifest)},
               {"size", manifest.size()},
               {"annotations", json::object{{"org.opencontainers.image.ref.name", ref_name}}}}}}}));
  if (!Run({"tar", "-C", layout, "-cf", out, "."})) return "";
  return out;
}

bool MakeBusyboxRootfs(const std::string& dir) {
  const std::string busybox = "/bin/busybox";
  if (!fs::exists(busybox)) return false;
  for (const char* sub : {"bin", "etc", "tmp", "root", "proc", "sys", "dev"}) {
    fs::create_directories(dir + "/" + sub);
  }
  fs::copy_file(busybox, dir + "/bin/busybox", fs::copy_options::overwrite_existing);
  Subprocess list({busybox, "--list"}, true);
  std::string applet;
  while (list.ReadLine(&applet)) {
    if (applet.empty() || applet == "busybox") continue;
    std::error_code ec;
    fs::create_symlink("busybox", fmt::format("{}/bin/{}", dir, applet), ec);
  }
  list.Wait();
  WriteFile(dir + "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
  WriteFile(dir + "/etc/group", "root:x:0:\nnogroup:x:65534:\n");
  return true;
}

bool AddProgram(const std::string& dir, const std::string& path) {
  if (!fs::exists(path)) return false;
  std::vector<std::string> files = {path};
  Subprocess ldd({"/usr/bin/ldd", path}, true);
  std::string line;
  while (ldd.ReadLine(&line)) {
    // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    size_t arrow = line.find("=> ");
    std::string rest = arrow == std::string::npos ? line : line.substr(arrow + 3);
    size_t start = rest.find('/');
    if (start == std::string::npos) continue;
    files.push_back(rest.substr(start, rest.find(' ', start) - start));
  }
  ldd.Wait();
  for (const auto& f : files) {
    fs::create_directories(dir + fs::path(f).parent_path().string());
    std::error_code ec;
    fs::copy_file(fs::canonical(f, ec), dir + f, fs::copy_options::overwrite_existing, ec);
    if (ec) return false;
  }
  return true;
}

}  // namespace kiso::testing
