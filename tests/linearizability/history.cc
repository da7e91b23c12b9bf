#include "linearizability/history.h"

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

namespace kiso::linearizability {

bool ParseJepsenLog(const std::string& path, std::vector<Operation<RegisterModel>>* ops,
                    std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot open " + path;
    return false;
  }
  static const std::regex kLine(R"(jepsen\.util - (\d+)\s+:(\w+)\s+:(\w+)\s+(.*?)\s*$)");
  std::map<int, size_t> open;  // process → index of its pending op
  std::vector<bool> dropped;
  std::string line;
  int64_t tick = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, kLine)) continue;
    ++tick;
    int process = std::stoi(m[1]);
    std::string type = m[2], f = m[3], value = m[4];
    if (type == "invoke") {
      Operation<RegisterModel> op;
      op.client = process;
      op.call = tick;
      op.ret = kNever;
      op.output.unknown = true;
      if (f == "read") {
        op.input.kind = RegisterModel::Kind::kRead;
      } else if (f == "write") {
        op.input = {RegisterModel::Kind::kWrite, std::stoi(value), 0};
      } else if (f == "cas") {
        int a = 0, b = 0;
        std::sscanf(value.c_str(), "[%d %d]", &a, &b);
        op.input = {RegisterModel::Kind::kCas, a, b};
      } else {
        *error = fmt::format("unknown op {} in {}", f, path);
        return false;
      }
      open[process] = ops->size();
      ops->push_back(op);
      dropped.push_back(false);
      continue;
    }
    auto it = open.find(process);
    if (it == open.end()) continue;
    Operation<RegisterModel>& op = (*ops)[it->second];
    if (type == "ok") {
      op.ret = tick;
      op.output.unknown = false;
      op.output.ok = true;
      if (op.input.kind == RegisterModel::Kind::kRead && value != "nil") {
        op.output.value = std::stoi(value);
      }
    } else if (type == "fail") {
      if (op.input.kind == RegisterModel::Kind::kCas) {
        op.ret = tick;
        op.output.unknown = false;
        op.output.ok = false;  // The compare did not match.
      } else {
        dropped[it->second] = true;  // Definitely did not happen.
      }
    }  // "info": outcome unknown, stays open until the end of time.
    open.erase(it);
  }
  std::vector<Operation<RegisterModel>> kept;
  for (size_t i = 0; i < ops->size(); ++i) {
    if (!dropped[i]) kept.push_back((*ops)[i]);
  }
  ops->swap(kept);
  return true;
}

bool ParseKvLog(const std::string& path, std::vector<std::vector<Operation<AppendKvModel>>>* parts,
                std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot open " + path;
    return false;
  }
  static const std::regex kLine(
      R"re(:process (\d+), :type :(\w+), :f :(\w+), :key "([^"]*)", :value (nil|"[^"]*"))re");
  std::map<std::string, std::vector<Operation<AppendKvModel>>> by_key;
  std::map<int, std::pair<std::string, size_t>> open;
  std::string line;
  int64_t tick = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, kLine)) continue;
    ++tick;
    int process = std::stoi(m[1]);
    std::string type = m[2], f = m[3], key = m[4], raw = m[5];
    std::string value = raw == "nil" ? "" : raw.substr(1, raw.size() - 2);
    if (type == "invoke") {
      Operation<AppendKvModel> op;
      op.client = process;
      op.call = tick;
      op.ret = kNever;
      op.output.unknown = true;
      op.input.kind = f == "get"   ? AppendKvModel::Kind::kGet
                      : f == "put" ? AppendKvModel::Kind::kPut
                                   : AppendKvModel::Kind::kAppend;
      op.input.value = value;
      auto& ops = by_key[key];
      open[process] = {key, ops.size()};
      ops.push_back(op);
      continue;
    }
    auto it = open.find(process);
    if (it == open.end()) continue;
    Operation<AppendKvModel>& op = by_key[it->second.first][it->second.second];
    if (type == "ok") {
      op.ret = tick;
      op.output.unknown = false;
      op.output.value = value;
    }
    open.erase(it);
  }
  for (auto& [key, ops] : by_key) parts->push_back(std::move(ops));
  return true;
}

}  // namespace kiso::linearizability
