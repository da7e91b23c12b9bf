// The allocator of kiso's executables: jemalloc (Debian's libjemalloc2), linked
// into `kiso` and `kiso agent` and into the benchmarks that run their code in
// process (src/common/CMakeLists.txt says why). Not in the sanitizer builds,
// whose runtimes bring their own.
//
// jemalloc reads this at its first allocation (`MALLOC_CONF` in the environment
// overrides it). A server holds some 70 threads (informers, the connections'
// pool, controllers' workers, the store's committer), so what jemalloc keeps
// per thread is kept small: by default each thread's cache has room for up to
// 200 objects of each small size (tens of KB a thread before it caches
// anything), which put 7 MB on the idle server's RSS and 27 MB on its RSS with
// 10,000 pods over glibc's malloc, against 3 and 15 MB at 8 a size, which keeps
// most of the speed (bench/README.md, "Allocator"). One arena per CPU (rather
// than four per CPU), each thread using the arena of the CPU it runs on, took
// about 1 MB more off the idle figure.
extern "C" {
// The name jemalloc looks up (its declaration's type, `const char*`).
const char* malloc_conf =
    "percpu_arena:percpu,tcache_nslots_small_min:4,tcache_nslots_small_max:8,"
    "tcache_nslots_large:2";
}
