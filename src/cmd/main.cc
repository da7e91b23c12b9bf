// kiso: one binary, subcommands. Only flag parsing and wiring live here.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "apiserver/health_server.h"
#include "store/store.h"

namespace {

int RunServer(const std::string& data_dir, std::string store_url, const std::string& address,
              uint16_t port) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    spdlog::error("create data dir {}: {}", data_dir, ec.message());
    return 1;
  }
  if (store_url.empty()) {
    store_url = "sqlite://" + std::filesystem::absolute(data_dir).string() + "/kiso.db";
  }
  // Block the stop signals before any thread starts, so only sigwait sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto store = kiso::store::OpenStore(store_url);
  if (!store.ok()) {
    spdlog::error("open store {}: {}", store_url, store.status().ToString());
    return 1;
  }
  auto rev = (*store)->CurrentRevision();
  auto server = kiso::apiserver::HealthServer::Start(store->get(), address, port);
  if (!server.ok()) {
    spdlog::error("{}", server.status().ToString());
    return 1;
  }
  spdlog::info("kiso {} serving: store {} ({}, CAP class {}) at revision {}", KISO_VERSION,
               store_url, (*store)->Backend(), (*store)->Cap().name, rev.ok() ? *rev : -1);
  std::cout << "kiso server is up. Health: curl http://" << address << ":" << (*server)->port()
            << "/healthz\n"
            << "The Kubernetes API (and KUBECONFIG for kubectl) is not served yet; "
               "see README.md.\n"
            << std::flush;
  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("signal {}: shutting down", sig);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiso: a Kubernetes-compatible container platform in one binary"};
  app.require_subcommand(1);

  app.add_subcommand("version", "Print the kiso version")->callback([] {
    std::cout << "kiso " << KISO_VERSION << "\n";
  });

  auto* server = app.add_subcommand("server", "Run the control plane (store + health endpoint)");
  std::string data_dir = "/var/lib/kiso";
  std::string store_url;
  std::string address = "127.0.0.1";
  uint16_t port = 6443;
  server->add_option("--data-dir", data_dir, "State directory")->capture_default_str();
  server->add_option("--store", store_url,
                     "Store URL: sqlite:///path/kiso.db (default: DATA_DIR/kiso.db) or "
                     "etcd://host:port[,host:port]");
  server->add_option("--address", address, "Listen address")->capture_default_str();
  server->add_option("--port", port, "Listen port (plain HTTP /healthz until the API server lands)")
      ->capture_default_str();
  int exit_code = 0;
  server->callback([&] { exit_code = RunServer(data_dir, store_url, address, port); });

  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
