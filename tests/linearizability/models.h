// Sequential models for the checker (see checker.h).
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace kiso::linearizability {

// A single register with read, write and compare-and-set: Jepsen's etcd test.
// nullopt is "no value". An unknown outcome accepts any effect.
struct RegisterModel {
  using State = std::optional<int>;
  enum class Kind { kRead, kWrite, kCas };
  struct Input {
    Kind kind = Kind::kRead;
    int a = 0;  // write: value; cas: expected
    int b = 0;  // cas: new value
  };
  struct Output {
    bool unknown = false;
    bool ok = true;            // cas: whether it swapped
    std::optional<int> value;  // read
  };
  static State Init() { return std::nullopt; }
  static size_t Hash(const State& s) { return s ? std::hash<int>{}(*s) : 0x9e3779b9u; }
  static bool Step(const State& s, const Input& in, const Output& out, State* next) {
    *next = s;
    switch (in.kind) {
      case Kind::kRead:
        return out.unknown || out.value == s;
      case Kind::kWrite:
        *next = in.a;
        return true;
      case Kind::kCas: {
        bool matches = s == in.a;
        if (matches) *next = in.b;
        return out.unknown || out.ok == matches;
      }
    }
    return false;
  }
};

// One key of a key-value map with get, put and append (porcupine's KV
// histories). A missing key reads as "".
struct AppendKvModel {
  using State = std::string;
  enum class Kind { kGet, kPut, kAppend };
  struct Input {
    Kind kind = Kind::kGet;
    std::string value;
  };
  struct Output {
    bool unknown = false;
    std::string value;  // get
  };
  static State Init() { return {}; }
  static size_t Hash(const State& s) { return std::hash<std::string>{}(s); }
  static bool Step(const State& s, const Input& in, const Output& out, State* next) {
    switch (in.kind) {
      case Kind::kGet:
        *next = s;
        return out.unknown || out.value == s;
      case Kind::kPut:
        *next = in.value;
        return true;
      case Kind::kAppend:
        *next = s + in.value;
        return true;
    }
    return false;
  }
};

// One key of kiso's Store as the linearizability test drives it: get, put,
// compare-and-swap on the value, and delete.
struct StoreKvModel {
  using State = std::optional<std::string>;
  enum class Kind { kGet, kPut, kCas, kDelete };
  struct Input {
    Kind kind = Kind::kGet;
    std::string value;     // put: value; cas: new value
    std::string expected;  // cas
  };
  struct Output {
    bool unknown = false;
    bool ok = false;                   // cas: swapped; delete: a value existed
    std::optional<std::string> value;  // get
  };
  static State Init() { return std::nullopt; }
  static size_t Hash(const State& s) { return s ? std::hash<std::string>{}(*s) : 0x51ed27u; }
  static bool Step(const State& s, const Input& in, const Output& out, State* next) {
    *next = s;
    switch (in.kind) {
      case Kind::kGet:
        return out.unknown || out.value == s;
      case Kind::kPut:
        *next = in.value;
        return true;
      case Kind::kCas: {
        bool matches = s.has_value() && *s == in.expected;
        if (matches) *next = in.value;
        return out.unknown || out.ok == matches;
      }
      case Kind::kDelete:
        next->reset();
        return out.unknown || out.ok == s.has_value();
    }
    return false;
  }
};

}  // namespace kiso::linearizability
