#include "api/packed_json.h"

#include <boost/json.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <cstddef>
#include <functional>
#include <new>

#include "api/object.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

constexpr size_t kMaxAlign = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

size_t AlignUp(size_t n, size_t align) { return (n + align - 1) & ~(align - 1); }

// Lays out what a copy asks for, as PackedResource will, on a scratch arena:
// how big the packed block must be.
class SizingResource final : public json::memory_resource {
 public:
  explicit SizingResource(size_t hint) : scratch_(hint) {}
  size_t used() const { return used_; }

 private:
  void* do_allocate(size_t n, size_t align) override {
    used_ = AlignUp(used_, align) + n;
    return scratch_.allocate(n, align);
  }
  void do_deallocate(void*, size_t, size_t) override {}
  bool do_is_equal(const memory_resource& other) const noexcept override { return this == &other; }

  json::monotonic_resource scratch_;
  size_t used_ = 0;
};

// One block, filled by the copy that made it (then sealed); anything
// allocated after that (by copies made from the document) comes from the
// heap, so the resource is safe to share between threads once sealed.
class PackedResource final : public json::memory_resource {
 public:
  // `self`: where to say where it is (make_shared_resource wraps it in an
  // object of its own, so the storage's pointer is not this one).
  PackedResource(size_t size, PackedResource** self)
      : block_(static_cast<char*>(::operator new(size == 0 ? 1 : size))), size_(size) {
    *self = this;
  }
  ~PackedResource() override { ::operator delete(block_); }
  PackedResource(const PackedResource&) = delete;
  PackedResource& operator=(const PackedResource&) = delete;

  void Seal() { sealed_ = true; }

 private:
  void* do_allocate(size_t n, size_t align) override {
    if (align > kMaxAlign) throw std::bad_alloc();  // boost::json asks for at most that.
    if (!sealed_) {
      size_t at = AlignUp(used_, align);
      if (at + n <= size_) {
        used_ = at + n;
        return block_ + at;
      }
    }
    return ::operator new(n);
  }
  void do_deallocate(void* p, size_t, size_t) override {
    // std::less: a total order even for pointers into different allocations.
    const std::less<const char*> before;
    const auto* c = static_cast<const char*>(p);
    if (!before(c, block_) && before(c, block_ + size_)) return;  // Freed with the block.
    ::operator delete(p);
  }
  bool do_is_equal(const memory_resource& other) const noexcept override { return this == &other; }

  char* block_;
  size_t size_;
  size_t used_ = 0;
  bool sealed_ = false;  // Set before the document is shared: read-only after.
};

}  // namespace

std::shared_ptr<const json::value> PackedCopy(const json::value& v) {
  size_t size = 0;
  {
    SizingResource sizing(4096);
    json::value probe(v, json::storage_ptr(&sizing));
    size = sizing.used();
  }
  PackedResource* packed = nullptr;
  json::storage_ptr storage = json::make_shared_resource<PackedResource>(size, &packed);
  auto copy = std::make_shared<const json::value>(v, std::move(storage));
  packed->Seal();
  return copy;
}

Result<std::shared_ptr<const json::value>> PackedDecode(std::string_view text) {
  json::monotonic_resource scratch(text.size() * 4 + 1024);
  KISO_ASSIGN_OR_RETURN(json::value v, ParseJson(text, false, json::storage_ptr(&scratch)));
  DropManagedFields(v);
  return PackedCopy(v);
}

}  // namespace kiso::api
