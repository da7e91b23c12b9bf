#include "image/blob_store.h"

#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/random.h"

namespace kiso::image {

namespace fs = std::filesystem;

namespace {

class Hasher {
 public:
  Hasher() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  }
  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string Digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &len);
    std::string out = "sha256:";
    for (unsigned int i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

bool ValidDigest(std::string_view d) {
  if (!d.starts_with("sha256:") || d.size() != 71) return false;
  for (char c : d.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string TempName(const std::string& dir) {
  return fmt::format("{}/.tmp-{:016x}", dir, ThreadRng()());
}

}  // namespace

std::string Sha256Digest(std::string_view data) {
  Hasher h;
  h.Update(data.data(), data.size());
  return h.Digest();
}

Result<std::string> Sha256DigestOfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeStatus(Code::kNotFound, "open {}: no such file", path);
  Hasher h;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.Update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return MakeStatus(Code::kInternal, "read {}", path);
  return h.Digest();
}

BlobStore::BlobStore(std::string root) : root_(std::move(root)) {}

std::string BlobStore::Path(std::string_view digest) const {
  return fmt::format("{}/blobs/sha256/{}", root_, digest.substr(digest.find(':') + 1));
}

bool BlobStore::Has(std::string_view digest) const {
  std::error_code ec;
  return ValidDigest(digest) && fs::exists(Path(digest), ec);
}

Result<std::string> BlobStore::Put(std::string_view data, std::string_view expected) {
  std::string dir = root_ + "/blobs/sha256";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return MakeStatus(Code::kInternal, "create {}: {}", dir, ec.message());
  std::string tmp = TempName(dir);
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      return MakeStatus(Code::kResourceExhausted, "write {}: disk full or unwritable", tmp);
    }
  }
  return Adopt(tmp, expected);
}

Result<std::string> BlobStore::Adopt(const std::string& path, std::string_view expected) {
  std::error_code ec;
  auto digest = Sha256DigestOfFile(path);
  if (!digest.ok()) return digest.status();
  if (!expected.empty() && *digest != expected) {
    fs::remove(path, ec);
    return MakeStatus(Code::kDataLoss, "blob {} does not match its digest: its content is {}",
                      expected, *digest);
  }
  std::string dir = root_ + "/blobs/sha256";
  fs::create_directories(dir, ec);
  fs::rename(path, Path(*digest), ec);
  if (ec) return MakeStatus(Code::kInternal, "store blob {}: {}", *digest, ec.message());
  return *digest;
}

Result<std::string> BlobStore::Read(std::string_view digest) const {
  if (!ValidDigest(digest)) return MakeStatus(Code::kInvalidArgument, "bad digest {:?}", digest);
  std::ifstream in(Path(digest), std::ios::binary);
  if (!in) return MakeStatus(Code::kNotFound, "blob {} not found", digest);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status BlobStore::Remove(std::string_view digest) {
  std::error_code ec;
  fs::remove(Path(digest), ec);
  if (ec) return MakeStatus(Code::kInternal, "remove blob {}: {}", digest, ec.message());
  return Status::Ok();
}

}  // namespace kiso::image
