# kiso — the two commands a person needs are `make run` and `make test`.
# Both install what is missing (Debian packages, as root), build, then act.

BUILD_DIR ?= build
DATA_DIR ?= $(CURDIR)/.data
PORT ?= 6443
CTEST_JOBS ?= 2

# Every Debian package the project needs to build, test and benchmark.
DEB_PACKAGES := build-essential g++ cmake ninja-build ccache pkg-config clang-format clang-tidy \
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libsqlite3-dev sqlite3 libssl-dev \
  libarchive-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev \
  etcd-server golang-etcd-server-dev util-linux

.PHONY: deps build test run bench bench-store lint format format-check clean

# Idempotent: installs only what is missing, and runs apt-get update only then.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR)

# Every test: unit, conformance on SQLite and a real etcd, reliability
# (kill -9 durability, linearizability, disk full, corruption), plus the format check.
test: build
	$(MAKE) --no-print-directory format-check
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(CTEST_JOBS) --timeout 900

run: build
	@mkdir -p $(DATA_DIR)
	@echo "Starting kiso server: data in $(DATA_DIR), store sqlite://$(DATA_DIR)/kiso.db"
	@echo "Health check:   curl http://127.0.0.1:$(PORT)/healthz"
	@echo "kubectl:        not yet — the Kubernetes API server is not built (see README.md)."
	$(BUILD_DIR)/src/cmd/kiso server --data-dir $(DATA_DIR) --port $(PORT)

bench: bench-store

bench-store: build
	$(BUILD_DIR)/bench/store_bench

SOURCES = $(shell git ls-files '*.cc' '*.h')

format-check:
	@clang-format --dry-run -Werror $(SOURCES) && echo "clang-format: clean"

format:
	clang-format -i $(SOURCES)

lint: build
	clang-tidy -p $(BUILD_DIR) --quiet $(filter %.cc,$(SOURCES))

clean:
	rm -rf $(BUILD_DIR)
