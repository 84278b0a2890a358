// Shared pieces of centerdet's CPU kernels for MindSpore (AOT custom operators): the oneDNN engine,
// reusable scratch buffers, the one-call-at-a-time lock and error reporting.
//
// Every exported kernel has MindSpore's AOT signature
//   int f(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream, void *extra)
// with params/shapes holding the inputs first, then the outputs. Tensors are float32, C-contiguous.
#ifndef CENTERDET_CPU_OPS_COMMON_H_
#define CENTERDET_CPU_OPS_COMMON_H_

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#define CENTERDET_AOT(name)                                                                                  \
  extern "C" __attribute__((visibility("default"))) int name(int nparam, void **params, int *ndims,        \
                                                               int64_t **shapes, const char **dtypes,       \
                                                               void *stream, void *extra)

namespace centerdet {

// The oneDNN CPU engine of this library's own oneDNN copy (see common.cc for the ISA choice).
dnnl::engine &cpu_engine();

// Growable byte buffers indexed by slot; one set serves every call (calls are serialised).
class Scratch {
 public:
  void *get(size_t slot, size_t bytes);

 private:
  std::vector<std::unique_ptr<char[]>> data_;
  std::vector<size_t> size_;
};

// Holds the process-wide kernel lock for one call and sets the OpenMP team size on the calling
// thread. MindSpore may launch independent kernels from several threads at once; each of ours
// already uses every core, so running two together would only make them fight over the cores.
class Call {
 public:
  Call();
  Scratch &scratch();

 private:
  std::lock_guard<std::mutex> lock_;
};

int64_t elements(const int64_t *shape, int ndim);

// Runs fn, turning a C++ exception into a non-zero return (MindSpore then raises) after printing
// one line naming the kernel.
template <typename Fn>
int guarded(const char *kernel, Fn &&fn);

void report_error(const char *kernel, const char *what);

template <typename Fn>
int guarded(const char *kernel, Fn &&fn) {
  try {
    Call call;
    fn(call);
    return 0;
  } catch (const dnnl::error &e) {
    report_error(kernel, e.what());
  } catch (const std::exception &e) {
    report_error(kernel, e.what());
  }
  return 1;
}

}  // namespace centerdet

#endif  // CENTERDET_CPU_OPS_COMMON_H_
