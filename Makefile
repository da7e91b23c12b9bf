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
  etcd-server golang-etcd-server-dev util-linux \
  clang libclang-rt-14-dev python3-kubernetes python3-pytest python3-yaml \
  runc crun containernetworking-plugins iproute2 iptables busybox-static \
  golang-github-opencontainers-specs-dev python3-jsonschema docker-registry skopeo nginx \
  qemu-system-x86 linux-image-amd64 zlib1g-dev libre2-dev libnftables-dev nftables \
  libldns-dev dnsutils dnsperf unbound curl openssl wrk \
  libnetfilter-conntrack-dev conntrack libbpf-dev bpftool libnghttp2-dev \
  libnftnl-dev libmnl-dev libabsl-dev tzdata python3-h2 libjemalloc-dev \
  wabt wasi-libc lld libclang-rt-14-dev-wasm32 iputils-ping iperf3

.PHONY: deps build test run bench bench-store bench-api bench-sched bench-node bench-net bench-ha bench-net-cross fuzz tsan lint lint-changed format format-check clean

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
# (kill -9 durability, linearizability, disk full, corruption), end to end with
# the real kubectl and Python client, a bounded fuzzing run, the unit and
# in-process tests under ThreadSanitizer, and the format check; then the leak
# check: nothing may be left on the machine (what was there before the run, a
# killed run's leftovers, is printed apart and not counted against this one).
test: build
	tests/leak_check --record $(BUILD_DIR)/leak-before.json
	$(MAKE) --no-print-directory format-check
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(CTEST_JOBS) --timeout 900
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory tsan
	tests/leak_check --since $(BUILD_DIR)/leak-before.json

# libFuzzer needs clang: the fuzz targets have their own build tree (the whole
# project with KISO_FUZZ=ON: ASan and UBSan everywhere, no tests). Each target
# runs for FUZZ_SECONDS from the checked-in corpus, in a scratch directory
# (also its TMPDIR) that is removed afterwards; a crash or hang fails the run.
FUZZ_SECONDS ?= 20
FUZZ_TARGETS := decode patch controllers protobuf jwt structural dns http2
fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DKISO_FUZZ=ON >/dev/null
	cmake --build build-fuzz --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  work=$$(mktemp -d); mkdir $$work/corpus; cp fuzz/corpus/$$t/* $$work/corpus/; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS)s"; \
	  TMPDIR=$$work build-fuzz/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=5 \
	    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=0 -artifact_prefix=build-fuzz/ $$work/corpus \
	    2>build-fuzz/fuzz_$$t.log || { tail -60 build-fuzz/fuzz_$$t.log; rm -rf $$work; exit 1; }; \
	  grep -E "^Done" build-fuzz/fuzz_$$t.log; rm -rf $$work; \
	done

# The unit and in-process tests under ThreadSanitizer, in a build tree of their
# own: races in the store, watch cache, API server, client, informers,
# controllers and scheduler fail the run. Not agent_test: its eight tests (pod
# phases, the ingress controller's choice, file writes) would bring the node's
# runtime, image, network and ingress libraries into this tree, a sixth of its
# compile time (about 3.5 of 22.5 min on a cold CI run).
TSAN_TESTS := common_test api_test store_unit_test apiserver_test client_test controllers_test \
  node_lifecycle_controller_test scheduler_test linearizability_checker_test
tsan: deps
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKISO_TSAN=ON \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
	cmake --build build-tsan --target $(TSAN_TESTS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest --test-dir build-tsan -L unit --output-on-failure -j $(CTEST_JOBS) --timeout 900

run: build
	@mkdir -p $(DATA_DIR)
	@echo "Starting kiso server: data in $(DATA_DIR), store sqlite://$(DATA_DIR)/kiso.db"
	@echo "In another shell:"
	@echo "  export KUBECONFIG=$(DATA_DIR)/kubeconfig.yaml"
	@echo "  kubectl get namespaces"
	@echo "This machine is a node (runc, CNI bridge kiso0, pods in 10.42.0.0/24). Images come from"
	@echo "their registries, or mirrors in $(DATA_DIR)/registries.yaml, or are imported:"
	@echo "  $(BUILD_DIR)/src/cmd/kiso image --data-dir $(DATA_DIR) import IMAGE.tar"
	@echo "Simulated nodes besides:"
	@echo "  $(BUILD_DIR)/src/cmd/kiso hollow --kubeconfig $(DATA_DIR)/kubeconfig.yaml --count 3"
	$(BUILD_DIR)/src/cmd/kiso server --data-dir $(DATA_DIR) --https-port $(PORT)

# Each benchmark refuses to start on a machine that something was left on
# (tests/leak_check); after them all, nothing may be left either.
bench: bench-store bench-api bench-sched bench-node bench-net bench-ha bench-net-cross
	tests/leak_check

bench-store: build
	$(BUILD_DIR)/bench/store_bench

bench-api: build
	$(BUILD_DIR)/bench/api_bench --kiso $(BUILD_DIR)/src/cmd/kiso

bench-sched: build
	$(BUILD_DIR)/bench/sched_bench

# The node benchmark cleans up after itself; if it is interrupted, the trap does.
bench-node: build
	@trap '$(BUILD_DIR)/src/cmd/kiso node reset >/dev/null' INT TERM; \
	  $(BUILD_DIR)/bench/node_bench --kiso $(BUILD_DIR)/src/cmd/kiso

# The cluster DNS beside unbound (dnsperf), and the service data plane's programming latency
# at 100, 1,000 and 10,000 Services (root: the node agent programs nftables).
bench-net: build
	KISO_BIN=$(BUILD_DIR)/src/cmd/kiso /usr/bin/python3 bench/net_bench.py
	KISO_BIN=$(BUILD_DIR)/src/cmd/kiso /usr/bin/python3 bench/policy_bench.py

# The control plane's failover: two servers on one etcd, 20 leader kills (issue 17).
bench-ha: build
	KISO_BIN=$(BUILD_DIR)/src/cmd/kiso /usr/bin/python3 bench/ha_bench.py

bench-net-cross: build
	KISO_BIN=$(BUILD_DIR)/src/cmd/kiso /usr/bin/python3 bench/net_cross_bench.py

SHELL := /bin/bash
SOURCES = $(shell git ls-files '*.cc' '*.h')

format-check:
	@clang-format --dry-run -Werror $(SOURCES) && echo "clang-format: clean"

format:
	clang-format -i $(SOURCES)

# clang-tidy on both cores, a unit per run; any finding fails (WarningsAsErrors in
# .clang-tidy). `lint` lints every unit and records the clean ones in .ci/tidy-clean
# by the digest of what clang-tidy read; `lint-changed` (.ci/run) lints only the
# units whose inputs differ from a recorded clean run and adds them (tests/lint).
lint: build
	@tests/lint --build $(BUILD_DIR)

lint-changed: build
	@tests/lint --build $(BUILD_DIR) --changed

clean:
	rm -rf $(BUILD_DIR) build-fuzz build-tsan
