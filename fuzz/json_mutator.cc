#include "json_mutator.h"

#include <boost/json.hpp>
#include <cstring>
#include <string_view>
#include <vector>

namespace kiso::fuzz {

namespace json = boost::json;

namespace {

// Values that break assumptions: wrong types, limits of int32 and int64,
// fractions, and strings that look like numbers, percentages and enums.
json::value Interesting(std::mt19937_64& rng) {
  static const char* const kValues[] = {"0",
                                        "-1",
                                        "1",
                                        "2147483647",
                                        "2147483648",
                                        "-9223372036854775808",
                                        "9223372036854775807",
                                        "18446744073709551615",
                                        "1.5",
                                        "-0.0",
                                        "1e308",
                                        "\"\"",
                                        "\"abc\"",
                                        "\"50%\"",
                                        "\"-5%\"",
                                        "\"101%\"",
                                        "\"1e3\"",
                                        "\"99999999999999999999\"",
                                        "\"Always\"",
                                        "\"RollingUpdate\"",
                                        "\"%\"",
                                        "\"0x10\"",
                                        "\"2026-13-45T99:99:99Z\"",
                                        "true",
                                        "false",
                                        "null",
                                        "{}",
                                        "[]",
                                        "[null]",
                                        "{\"\":null}",
                                        "\"a/b\"",
                                        "\"\\u0000\""};
  std::uniform_int_distribution<size_t> pick(0, std::size(kValues) - 1);
  return json::parse(kValues[pick(rng)]);
}

struct Slot {
  json::value* value;
  json::value* parent;  // nullptr for the root.
};

void Collect(json::value& v, json::value* parent, std::vector<Slot>& out,
             std::vector<std::string>& keys) {
  out.push_back({&v, parent});
  if (auto* o = v.if_object()) {
    for (auto& [k, child] : *o) {
      keys.emplace_back(k);
      Collect(child, &v, out, keys);
    }
  } else if (auto* a = v.if_array()) {
    for (auto& child : *a) Collect(child, &v, out, keys);
  }
}

void Mutate(json::value& root, std::mt19937_64& rng) {
  std::vector<Slot> slots;
  std::vector<std::string> keys;
  Collect(root, nullptr, slots, keys);
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  Slot target = slots[pick(slots.size())];
  switch (pick(5)) {
    case 0:  // Another value in place.
      if (target.parent) *target.value = Interesting(rng);
      break;
    case 1:  // A field or element removed.
      if (auto* o = target.parent ? target.parent->if_object() : nullptr) {
        for (auto it = o->begin(); it != o->end(); ++it) {
          if (&it->value() == target.value) {
            o->erase(it);
            break;
          }
        }
      } else if (auto* a = target.parent ? target.parent->if_array() : nullptr) {
        for (auto it = a->begin(); it != a->end(); ++it) {
          if (&*it == target.value) {
            a->erase(it);
            break;
          }
        }
      }
      break;
    case 2: {  // A subtree copied over another value.
      Slot source = slots[pick(slots.size())];
      if (target.parent && source.value != target.value) {
        json::value copy = *source.value;
        *target.value = std::move(copy);
      }
      break;
    }
    case 3:  // A field the document uses elsewhere, added here.
      if (auto* o = target.value->if_object(); o && !keys.empty()) {
        (*o)[keys[pick(keys.size())]] = Interesting(rng);
      }
      break;
    case 4:  // An element repeated.
      if (auto* a = target.value->if_array(); a && !a->empty()) {
        json::value copy = (*a)[pick(a->size())];
        a->push_back(std::move(copy));
      }
      break;
  }
}

}  // namespace

size_t MutateJson(uint8_t* data, size_t size, size_t max_size, std::mt19937_64& rng) {
  json::error_code ec;
  json::value root = json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec);
  if (ec || !root.is_object()) return 0;
  int rounds = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < rounds; ++i) Mutate(root, rng);
  std::string out = json::serialize(root);
  if (out.size() > max_size) return 0;
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

}  // namespace kiso::fuzz
