// Response bodies made of shared parts: their size, flattening, reading.
#include <algorithm>
#include <cstring>

#include "apiserver/http/http.h"

namespace kiso::apiserver {

size_t Response::BodySize() const {
  size_t n = body.size();
  if (!parts) return n;
  for (const auto& p : parts->parts) n += p->size();
  if (!parts->parts.empty()) n += parts->separator.size() * (parts->parts.size() - 1);
  return n + parts->tail.size();
}

void Response::Flatten() {
  if (!parts) return;
  size_t size = BodySize();
  BodyReader reader(*this);
  std::string all(size, '\0');
  size_t at = 0;
  while (size_t n = reader.Read(all.data() + at, all.size() - at)) at += n;
  all.resize(at);
  body = std::move(all);
}

size_t BodyReader::Segments() const {
  if (!parts_) return 1;
  size_t n = parts_->parts.size();
  return n == 0 ? 2 : 2 * n + 1;  // head, the parts and the separators between them, tail.
}

std::string_view BodyReader::Segment(size_t i) const {
  if (i == 0) return head_;
  if (i + 1 == Segments()) return parts_->tail;
  return i % 2 == 1 ? std::string_view(*parts_->parts[(i - 1) / 2])
                    : std::string_view(parts_->separator);
}

size_t BodyReader::Read(char* out, size_t max) {
  size_t done = 0;
  while (done < max && !Done()) {
    std::string_view s = Segment(segment_);
    size_t n = std::min(max - done, s.size() - offset_);
    if (n > 0) std::memcpy(out + done, s.data() + offset_, n);
    done += n;
    offset_ += n;
    if (offset_ == s.size()) {
      ++segment_;
      offset_ = 0;
    }
  }
  return done;
}

}  // namespace kiso::apiserver
