// A test fixture for controllers: a real in-process API server on a SQLite
// store in a temporary directory, and a client for it. Tests poll the API
// with a deadline (Eventually), never sleep for a fixed time.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "api/object.h"
#include "api/resources.h"
#include "apiserver/api_server.h"
#include "client/client.h"
#include "client/in_process.h"
#include "store/store.h"
#include "support/temp_dir.h"

namespace kiso::controller {

class ControllerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore("sqlite://" + dir_.File("kiso.db"));
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    apiserver::ApiServerOptions options;
    options.port = 0;
    options.data_dir = dir_.path();
    auto server = apiserver::ApiServer::Start(store_.get(), options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    client_ = std::make_unique<client::Client>(
        std::make_shared<client::InProcessTransport>(server_.get()), "test");
  }

  static const api::ResourceType& R(std::string_view group, std::string_view plural) {
    return *api::FindResource(group, "v1", plural);
  }

  // Polls until `pred` holds, with a 10 s deadline.
  template <typename P>
  static bool Eventually(P pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  testing::TempDir dir_{"controller"};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::unique_ptr<client::Client> client_;
};

}  // namespace kiso::controller
