#include "image/image_store.h"

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/random.h"
#include "image/layer.h"

namespace kiso::image {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

Result<json::value> ParseJsonText(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return MakeStatus(Code::kInvalidArgument, "{} is not a JSON object: {}", what,
                      ec ? ec.message() : "wrong type");
  }
  return v;
}

std::string Str(const json::value& v, std::string_view key) {
  if (!v.is_object()) return "";
  const auto* f = v.get_object().if_contains(key);
  return f && f->is_string() ? std::string(f->get_string()) : "";
}

std::vector<std::string> Strings(const json::value* v) {
  std::vector<std::string> out;
  if (v && v->is_array()) {
    for (const auto& s : v->get_array()) {
      if (s.is_string()) out.emplace_back(s.get_string());
    }
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeStatus(Code::kNotFound, "{} not found", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string TempDir(const std::string& parent) {
  std::string dir = fmt::format("{}/.tmp-{:016x}", parent, ThreadRng()());
  std::error_code ec;
  fs::create_directories(dir, ec);
  return dir;
}

}  // namespace

bool IsIndexMediaType(std::string_view media_type) {
  return media_type == "application/vnd.oci.image.index.v1+json" ||
         media_type == "application/vnd.docker.distribution.manifest.list.v2+json";
}

Result<std::string> SelectPlatform(const json::value& index) {
  const auto* manifests = index.as_object().if_contains("manifests");
  if (manifests && manifests->is_array()) {
    for (const auto& m : manifests->get_array()) {
      const auto* platform = m.as_object().if_contains("platform");
      if (platform && Str(*platform, "os") == "linux" &&
          Str(*platform, "architecture") == "amd64") {
        return Str(m, "digest");
      }
    }
  }
  return Status(Code::kNotFound, "no manifest for linux/amd64 in the image index");
}

ImageStore::ImageStore(std::string root) : root_(root), blobs_(std::move(root)) {}

Result<std::unique_ptr<ImageStore>> ImageStore::Open(std::string root) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return MakeStatus(Code::kInternal, "create {}: {}", root, ec.message());
  std::unique_ptr<ImageStore> s(new ImageStore(root));
  std::lock_guard lock(s->mu_);
  KISO_RETURN_IF_ERROR(s->Refresh());
  return s;
}

Status ImageStore::Refresh() const {
  std::string path = root_ + "/images.json";
  std::error_code ec;
  auto mtime = fs::last_write_time(path, ec);
  if (ec || mtime == loaded_at_) return Status::Ok();  // Absent, or unchanged.
  KISO_ASSIGN_OR_RETURN(auto text, ReadFile(path));
  KISO_ASSIGN_OR_RETURN(auto v, ParseJsonText(text, path));
  refs_.clear();
  const auto* refs = v.as_object().if_contains("images");
  if (refs && refs->is_object()) {
    for (const auto& [name, digest] : refs->get_object()) {
      if (digest.is_string()) refs_.emplace_back(name, digest.get_string());
    }
  }
  loaded_at_ = mtime;
  return Status::Ok();
}

Status ImageStore::Save() const {
  json::object images;
  for (const auto& [name, digest] : refs_) images[name] = digest;
  std::string tmp = root_ + "/images.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json::serialize(json::object{{"images", std::move(images)}});
    out.flush();
    if (!out) return MakeStatus(Code::kResourceExhausted, "write {}", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, root_ + "/images.json", ec);
  if (ec) return MakeStatus(Code::kInternal, "save {}/images.json: {}", root_, ec.message());
  loaded_at_ = fs::last_write_time(root_ + "/images.json", ec);
  return Status::Ok();
}

Result<Image> ImageStore::Load(const std::string& name, const std::string& digest) const {
  KISO_ASSIGN_OR_RETURN(auto text, blobs_.Read(digest));
  KISO_ASSIGN_OR_RETURN(auto manifest, ParseJsonText(text, "manifest " + digest));
  Image image;
  image.name = name;
  image.manifest_digest = digest;
  if (IsIndexMediaType(Str(manifest, "mediaType")) ||
      (manifest.as_object().contains("manifests") && !manifest.as_object().contains("layers"))) {
    KISO_ASSIGN_OR_RETURN(auto chosen, SelectPlatform(manifest));
    KISO_ASSIGN_OR_RETURN(text, blobs_.Read(chosen));
    KISO_ASSIGN_OR_RETURN(manifest, ParseJsonText(text, "manifest " + chosen));
  }
  const auto* config = manifest.as_object().if_contains("config");
  if (!config) return MakeStatus(Code::kInvalidArgument, "manifest {} has no config", digest);
  image.config_digest = Str(*config, "digest");
  const auto* layers = manifest.as_object().if_contains("layers");
  if (layers && layers->is_array()) {
    for (const auto& l : layers->get_array()) {
      image.layers.push_back(Str(l, "digest"));
      if (const auto* size = l.as_object().if_contains("size"); size && size->is_int64())
        image.size += size->get_int64();
    }
  }
  KISO_ASSIGN_OR_RETURN(auto config_text, blobs_.Read(image.config_digest));
  image.size += static_cast<int64_t>(config_text.size());
  KISO_ASSIGN_OR_RETURN(auto cfg, ParseJsonText(config_text, "image config"));
  if (const auto* c = cfg.as_object().if_contains("config"); c && c->is_object()) {
    image.config.entrypoint = Strings(c->get_object().if_contains("Entrypoint"));
    image.config.cmd = Strings(c->get_object().if_contains("Cmd"));
    image.config.env = Strings(c->get_object().if_contains("Env"));
    image.config.working_dir = Str(*c, "WorkingDir");
    image.config.user = Str(*c, "User");
  }
  return image;
}

Result<Image> ImageStore::Tag(const Reference& ref, const std::string& digest) {
  KISO_ASSIGN_OR_RETURN(auto image, Load(ref.String(), digest));
  std::lock_guard lock(mu_);
  KISO_RETURN_IF_ERROR(Refresh());
  bool found = false;
  for (auto& [name, d] : refs_) {
    if (name == image.name) {
      d = digest;
      found = true;
    }
  }
  if (!found) refs_.emplace_back(image.name, digest);
  KISO_RETURN_IF_ERROR(Save());
  return image;
}

Result<std::vector<Image>> ImageStore::Import(const std::string& tar,
                                              std::string_view default_name) {
  std::string tmp = TempDir(root_);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{tmp};
  KISO_RETURN_IF_ERROR(ExtractArchive(tar, tmp));
  std::vector<Image> out;
  auto name_for = [&](std::string_view annotated) -> Result<Reference> {
    std::string_view name = annotated.empty() ? default_name : annotated;
    if (name.empty()) {
      return MakeStatus(Code::kInvalidArgument,
                        "{}: an image has no name in the archive; give one (--name)", tar);
    }
    // A bare tag ("latest") names a tag of default_name's repository.
    if (name.find('/') == std::string_view::npos && name.find(':') == std::string_view::npos &&
        !default_name.empty() && !annotated.empty()) {
      KISO_ASSIGN_OR_RETURN(auto base, ParseReference(default_name));
      base.tag = std::string(name);
      base.digest.clear();
      return base;
    }
    return ParseReference(name);
  };
  if (fs::exists(tmp + "/index.json")) {  // OCI image layout.
    KISO_ASSIGN_OR_RETURN(auto text, ReadFile(tmp + "/index.json"));
    KISO_ASSIGN_OR_RETURN(auto index, ParseJsonText(text, tar + ": index.json"));
    // Every blob goes in, verified against its file name.
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(tmp + "/blobs/sha256", ec)) {
      std::string digest = "sha256:" + f.path().filename().string();
      auto stored = blobs_.Adopt(f.path().string(), digest);
      if (!stored.ok()) return stored.status().Annotate(tar);
    }
    const auto* manifests = index.as_object().if_contains("manifests");
    if (!manifests || !manifests->is_array() || manifests->get_array().empty()) {
      return MakeStatus(Code::kInvalidArgument, "{}: index.json lists no manifests", tar);
    }
    for (const auto& m : manifests->get_array()) {
      std::string annotated;
      if (const auto* a = m.as_object().if_contains("annotations"); a && a->is_object()) {
        annotated = Str(*a, "io.containerd.image.name");
        if (annotated.empty()) annotated = Str(*a, "org.opencontainers.image.ref.name");
      }
      KISO_ASSIGN_OR_RETURN(auto ref, name_for(annotated));
      KISO_ASSIGN_OR_RETURN(auto image, Tag(ref, Str(m, "digest")));
      out.push_back(std::move(image));
    }
    return out;
  }
  if (fs::exists(tmp + "/manifest.json")) {  // docker-archive.
    KISO_ASSIGN_OR_RETURN(auto text, ReadFile(tmp + "/manifest.json"));
    boost::system::error_code pec;
    json::value list = json::parse(text, pec);
    if (pec || !list.is_array()) {
      return MakeStatus(Code::kInvalidArgument, "{}: manifest.json is not a JSON array", tar);
    }
    for (const auto& entry : list.get_array()) {
      KISO_ASSIGN_OR_RETURN(auto config_digest, blobs_.Adopt(tmp + "/" + Str(entry, "Config")));
      json::array layers;
      for (const auto& l : Strings(entry.as_object().if_contains("Layers"))) {
        std::error_code ec;
        std::string layer_file = fmt::format("{}/{}", tmp, l);
        auto size = static_cast<int64_t>(fs::file_size(layer_file, ec));
        KISO_ASSIGN_OR_RETURN(auto layer_digest, blobs_.Adopt(layer_file));
        layers.push_back(json::object{{"mediaType", "application/vnd.docker.image.rootfs.diff.tar"},
                                      {"size", size},
                                      {"digest", layer_digest}});
      }
      KISO_ASSIGN_OR_RETURN(auto config_text, blobs_.Read(config_digest));
      json::value manifest = json::object{
          {"schemaVersion", 2},
          {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
          {"config", json::object{{"mediaType", "application/vnd.docker.container.image.v1+json"},
                                  {"size", config_text.size()},
                                  {"digest", config_digest}}},
          {"layers", std::move(layers)}};
      KISO_ASSIGN_OR_RETURN(auto digest, blobs_.Put(json::serialize(manifest)));
      auto tags = Strings(entry.as_object().if_contains("RepoTags"));
      if (tags.empty()) tags.emplace_back("");
      for (const auto& tag : tags) {
        KISO_ASSIGN_OR_RETURN(auto ref, name_for(tag));
        KISO_ASSIGN_OR_RETURN(auto image, Tag(ref, digest));
        out.push_back(std::move(image));
      }
    }
    return out;
  }
  return MakeStatus(Code::kInvalidArgument,
                    "{} is neither an OCI image layout (index.json) nor a docker-archive "
                    "(manifest.json)",
                    tar);
}

Result<Image> ImageStore::Get(std::string_view ref) const {
  std::vector<std::pair<std::string, std::string>> refs;
  {
    std::lock_guard lock(mu_);
    (void)Refresh();  // On failure, the names last read.
    refs = refs_;
  }
  auto parsed = ParseReference(ref);
  if (parsed.ok()) {
    for (const auto& [name, digest] : refs) {
      if (name == parsed->String()) return Load(name, digest);
    }
  }
  // An image ID (config digest), whole or a prefix of at least 12 hex digits.
  std::string id(ref.starts_with("sha256:") ? ref.substr(7) : ref);
  if (id.size() >= 12) {
    for (const auto& [name, digest] : refs) {
      auto image = Load(name, digest);
      if (image.ok() && image->config_digest.substr(7).starts_with(id)) return image;
    }
  }
  return MakeStatus(Code::kNotFound, "image {:?} not found on this node",
                    parsed.ok() ? parsed->String() : std::string(ref));
}

std::vector<Image> ImageStore::List() const {
  std::vector<std::pair<std::string, std::string>> refs;
  {
    std::lock_guard lock(mu_);
    (void)Refresh();  // On failure, the names last read.
    refs = refs_;
  }
  std::vector<Image> out;
  for (const auto& [name, digest] : refs) {
    auto image = Load(name, digest);
    if (image.ok()) out.push_back(std::move(*image));
  }
  return out;
}

Status ImageStore::Remove(std::string_view ref) {
  KISO_ASSIGN_OR_RETURN(auto image, Get(ref));
  std::set<std::string> still_used;
  {
    std::lock_guard lock(mu_);
    KISO_RETURN_IF_ERROR(Refresh());
    std::erase_if(refs_, [&](const auto& r) { return r.first == image.name; });
    KISO_RETURN_IF_ERROR(Save());
  }
  for (const auto& other : List()) {
    still_used.insert(other.manifest_digest);
    still_used.insert(other.config_digest);
    still_used.insert(other.layers.begin(), other.layers.end());
  }
  if (still_used.contains(image.config_digest)) return Status::Ok();
  for (const auto& d : image.layers) {
    if (!still_used.contains(d)) KISO_RETURN_IF_ERROR(blobs_.Remove(d));
  }
  KISO_RETURN_IF_ERROR(blobs_.Remove(image.config_digest));
  if (!still_used.contains(image.manifest_digest))
    KISO_RETURN_IF_ERROR(blobs_.Remove(image.manifest_digest));
  std::error_code ec;
  fs::remove_all(fmt::format("{}/rootfs/{}", root_, image.config_digest.substr(7)), ec);
  return Status::Ok();
}

Result<std::string> ImageStore::Rootfs(const Image& image) {
  std::string dir = fmt::format("{}/rootfs/{}", root_, image.config_digest.substr(7));
  std::lock_guard lock(unpack_mu_);
  std::error_code ec;
  if (fs::exists(dir, ec)) return dir;
  fs::create_directories(root_ + "/rootfs", ec);
  std::string tmp = TempDir(root_ + "/rootfs");
  for (const auto& layer : image.layers) {
    Status s = ApplyLayer(blobs_.Path(layer), tmp);
    if (!s.ok()) {
      fs::remove_all(tmp, ec);
      return s.Annotate(fmt::format("unpack {}", image.name));
    }
  }
  fs::rename(tmp, dir, ec);
  if (ec) return MakeStatus(Code::kInternal, "unpack {}: {}", image.name, ec.message());
  return dir;
}

}  // namespace kiso::image
