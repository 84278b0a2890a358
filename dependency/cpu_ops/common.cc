#include "common.h"

#include <omp.h>

#include <cstdio>
#include <string>

namespace centerdet {
namespace {

std::mutex &kernel_mutex() {
  static std::mutex m;
  return m;
}

Scratch &shared_scratch() {
  static Scratch s;
  return s;
}

int team_size = 0;  // 0: OpenMP's default (OMP_NUM_THREADS or every core)
std::string last_error;

}  // namespace

dnnl::engine &cpu_engine() {
  // MindSpore's own oneDNN runs under ONEDNN_MAX_CPU_ISA=AVX2 (centerdet sets it: its plain-layout
  // kernels fall back to reference code above AVX2). That variable would cap this copy too, so the
  // cap is lifted here, before the first primitive: this library runs blocked-layout kernels,
  // which are fine at every ISA.
  static const bool isa_set = [] {
    dnnl_set_max_cpu_isa(dnnl_cpu_isa_default);
    return true;
  }();
  (void)isa_set;
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

void *Scratch::get(size_t slot, size_t bytes) {
  if (data_.size() <= slot) {
    data_.resize(slot + 1);
    size_.resize(slot + 1, 0);
  }
  if (size_[slot] < bytes) {
    data_[slot].reset();  // release before allocating, so peak memory holds one copy
    data_[slot].reset(new char[bytes]);
    size_[slot] = bytes;
  }
  return data_[slot].get();
}

Call::Call() : lock_(kernel_mutex()) {
  if (team_size > 0) omp_set_num_threads(team_size);
}

Scratch &Call::scratch() { return shared_scratch(); }

int64_t elements(const int64_t *shape, int ndim) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

void report_error(const char *kernel, const char *what) {
  last_error = std::string(kernel) + ": " + what;
  fprintf(stderr, "centerdet cpu_ops: %s\n", last_error.c_str());
}

}  // namespace centerdet

extern "C" {

// Threads per kernel call (0: OpenMP's default). Data-parallel runs set cores / local workers.
__attribute__((visibility("default"))) void CenterdetSetThreads(int n) { centerdet::team_size = n < 0 ? 0 : n; }

__attribute__((visibility("default"))) const char *CenterdetLastError() {
  return centerdet::last_error.c_str();
}

// "major.minor.patch" of the oneDNN this library runs on.
__attribute__((visibility("default"))) const char *CenterdetOneDnnVersion() {
  static std::string v;
  const dnnl_version_t *ver = dnnl_version();
  v = std::to_string(ver->major) + "." + std::to_string(ver->minor) + "." + std::to_string(ver->patch);
  return v.c_str();
}

}  // extern "C"
