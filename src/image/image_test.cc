// References, layers with whiteouts, and OCI layout import, on real archives
// made by GNU tar in a temporary directory.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "image/image_service.h"
#include "image/image_store.h"
#include "image/layer.h"
#include "image/reference.h"
#include "support/oci_image.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace kiso::image {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

using testing::ReadFile;
using testing::WriteFile;

// tar -C dir -c[z]f out . (GNU tar, as any image builder's output).
void Tar(const std::string& dir, const std::string& out, bool gzip = false) {
  testing::Subprocess tar({"tar", "-C", dir, gzip ? "-czf" : "-cf", out, "."}, false);
  int status = tar.Wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "tar " << dir;
}

TEST(ReferenceTest, NormalisesLikeDocker) {
  EXPECT_EQ(ParseReference("busybox")->String(), "docker.io/library/busybox:latest");
  EXPECT_EQ(ParseReference("nginx:1.25")->String(), "docker.io/library/nginx:1.25");
  EXPECT_EQ(ParseReference("127.0.0.1:5000/tools/bb:v1")->String(), "127.0.0.1:5000/tools/bb:v1");
  auto r = ParseReference("registry.k8s.io/pause:3.9");
  EXPECT_EQ(r->registry, "registry.k8s.io");
  EXPECT_EQ(r->repository, "pause");
  std::string digest = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(ParseReference("bb@" + digest)->String(), "docker.io/library/bb@" + digest);
  EXPECT_EQ(ParseReference("Busybox").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseReference("bb@sha256:12").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseReference("").status().code(), Code::kInvalidArgument);
}

TEST(LayerTest, AppliesWhiteoutsAndOpaqueDirectoriesToLowerLayersOnly) {
  testing::TempDir dir("layer");
  WriteFile(dir.File("l1/a/x"), "x");
  WriteFile(dir.File("l1/a/y"), "y");
  WriteFile(dir.File("l1/b/old"), "old");
  WriteFile(dir.File("l1/keep"), "1");
  WriteFile(dir.File("l2/a/.wh.x"), "");
  WriteFile(dir.File("l2/b/.wh..wh..opq"), "");
  WriteFile(dir.File("l2/b/new"), "new");
  WriteFile(dir.File("l2/keep"), "2");
  Tar(dir.File("l1"), dir.File("l1.tar"));
  Tar(dir.File("l2"), dir.File("l2.tar.gz"), /*gzip=*/true);
  fs::create_directories(dir.File("root"));
  ASSERT_TRUE(ApplyLayer(dir.File("l1.tar"), dir.File("root")).ok());
  ASSERT_TRUE(ApplyLayer(dir.File("l2.tar.gz"), dir.File("root")).ok());
  EXPECT_FALSE(fs::exists(dir.File("root/a/x")));
  EXPECT_EQ(ReadFile(dir.File("root/a/y")), "y");
  EXPECT_FALSE(fs::exists(dir.File("root/b/old")));
  EXPECT_EQ(ReadFile(dir.File("root/b/new")),
            "new");  // The opaque marker hides the lower layer only.
  EXPECT_EQ(ReadFile(dir.File("root/keep")), "2");
  EXPECT_FALSE(fs::exists(dir.File("root/a/.wh.x")));
}

TEST(LayerTest, RefusesEntriesThatEscapeTheRoot) {
  testing::TempDir dir("layer");
  WriteFile(dir.File("evil/x"), "x");
  testing::Subprocess tar({"tar", "-C", dir.File("evil"), "-cf", dir.File("evil.tar"),
                           "--transform", "s,^x,../escaped,", "x"},
                          false);
  ASSERT_EQ(tar.Wait(), 0);
  fs::create_directories(dir.File("root"));
  Status s = ApplyLayer(dir.File("evil.tar"), dir.File("root"));
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_FALSE(fs::exists(dir.File("escaped")));
}

// An OCI image layout with one image, as `umoci` or `skopeo copy oci-archive:` make.
std::string MakeOciLayout(const testing::TempDir& dir, const std::string& ref_name) {
  WriteFile(dir.File("rootfs/bin/hello"), "#!/bin/sh\necho hi\n");
  return testing::BuildOciArchive(dir.path(), dir.File("rootfs"), ref_name, {"/bin/hello"},
                                  dir.File("image.tar"));
}

TEST(ImageStoreTest, ImportsAnOciLayoutAndUnpacksItsRootfs) {
  testing::TempDir dir("images");
  std::string tar = MakeOciLayout(dir, "latest");
  auto store = ImageStore::Open(dir.File("store"));
  ASSERT_TRUE(store.ok());
  auto images = (*store)->Import(tar, "example.com/hello");
  ASSERT_TRUE(images.ok()) << images.status().ToString();
  ASSERT_EQ(images->size(), 1u);
  EXPECT_EQ((*images)[0].name, "example.com/hello:latest");
  EXPECT_EQ((*images)[0].config.cmd, std::vector<std::string>{"/bin/hello"});

  // Reopened, the name is still there; by ID prefix too.
  auto reopened = ImageStore::Open(dir.File("store"));
  auto image = (*reopened)->Get("example.com/hello");
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_TRUE((*reopened)->Get(image->config_digest.substr(7, 12)).ok());
  auto rootfs = (*reopened)->Rootfs(*image);
  ASSERT_TRUE(rootfs.ok()) << rootfs.status().ToString();
  EXPECT_EQ(ReadFile(*rootfs + "/bin/hello"), "#!/bin/sh\necho hi\n");

  EXPECT_EQ((*reopened)->Get("example.com/other").status().code(), Code::kNotFound);
  ASSERT_TRUE((*reopened)->Remove("example.com/hello").ok());
  EXPECT_TRUE((*reopened)->List().empty());
  EXPECT_FALSE((*reopened)->blobs().Has(image->layers[0]));
}

TEST(ImageServiceTest, TheCriVerbsOverTheNodesStore) {
  testing::TempDir dir("images");
  std::string tar = MakeOciLayout(dir, "1.0");
  // No registries.yaml: no mirrors, not an error.
  auto service = LocalImageService::Open(dir.File("store"), dir.File("absent.yaml"));
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  EXPECT_EQ((*service)->ImageStatus("example.com/hello:1.0").status().code(), Code::kNotFound);
  ASSERT_TRUE((*service)->store().Import(tar, "example.com/hello").ok());
  auto image = (*service)->ImageStatus("example.com/hello:1.0");
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  ASSERT_EQ((*service)->ListImages().size(), 1u);
  auto rootfs = (*service)->ImageRootfs(*image);
  ASSERT_TRUE(rootfs.ok());
  EXPECT_EQ(ReadFile(*rootfs + "/bin/hello"), "#!/bin/sh\necho hi\n");
  // A malformed reference is refused before any registry is asked.
  auto bad = (*service)->PullImage("UPPER/Case:tag", {});
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument) << bad.status().ToString();
  ASSERT_TRUE((*service)->RemoveImage("example.com/hello:1.0").ok());
  EXPECT_TRUE((*service)->ListImages().empty());
}

TEST(ImageStoreTest, RefusesABlobThatDoesNotMatchItsDigest) {
  testing::TempDir dir("images");
  std::string tar = MakeOciLayout(dir, "docker.io/library/hello:1");
  // Corrupt the layer inside the layout, keeping its name.
  for (const auto& f : fs::directory_iterator(dir.File("layout/blobs/sha256"))) {
    if (fs::file_size(f.path()) > 100 &&
        ReadFile(f.path()).find("schemaVersion") == std::string::npos) {
      std::ofstream(f.path(), std::ios::app) << "tampered";
    }
  }
  Tar(dir.File("layout"), tar);
  auto store = ImageStore::Open(dir.File("store"));
  auto images = (*store)->Import(tar);
  EXPECT_EQ(images.status().code(), Code::kDataLoss) << images.status().ToString();
  EXPECT_TRUE((*store)->List().empty());
}

}  // namespace
}  // namespace kiso::image
