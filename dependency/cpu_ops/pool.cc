// Max pooling forward and backward on oneDNN's channel-blocked layout (the ResNet stem pool).
// MindSpore's CPU MaxPoolGrad took ~55 ms of a ResNet-18 train step on a 4×64×128² map; PyTorch's
// whole pool forward + backward takes a few.
//
// The last input is an int64 vector [kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom,
// pad_left, pad_right]. Padded positions never win (PyTorch's rule).
#include <stdexcept>

#include "common.h"

namespace centerdet {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

struct PoolShape {
  memory::dims src, dst, kernel, strides, pad_l, pad_r, dilation;
  memory::desc user_src, user_dst, blocked_src, blocked_dst;
};

dnnl::pooling_forward::primitive_desc forward_pd(const PoolShape &s, dnnl::prop_kind kind) {
  return dnnl::pooling_forward::primitive_desc(cpu_engine(), kind, dnnl::algorithm::pooling_max, s.blocked_src,
                                               s.blocked_dst, s.strides, s.kernel, s.dilation, s.pad_l, s.pad_r);
}

// The JIT kernels pool whole vectors of channels: blocks of 16 with AVX-512, of 8 with AVX2. A
// block the CPU has no kernel for falls through to oneDNN's reference loop (a ResNet stem pool
// 336 ms against ~2 ms on an AVX2-only CPU), so the first block size with a JIT kernel wins.
// A 5-D (N, C/B, H, W, B) tensor is already blocked (ResNet's layout, see conv.cc) and pooled as is.
PoolShape pool_shape(const int64_t *x, int x_ndim, const int64_t *y, const int64_t *p) {
  PoolShape s;
  const int64_t block = x_ndim == 5 ? x[4] : 1;
  s.src = {x[0], x[1] * block, x[2], x[3]};
  s.dst = {y[0], y[1] * block, y[2], y[3]};
  s.kernel = {p[0], p[1]};
  s.strides = {p[2], p[3]};
  s.pad_l = {p[4], p[6]};
  s.pad_r = {p[5], p[7]};
  s.dilation = {0, 0};
  if (x_ndim == 5) {
    if (block != 8 && block != 16) throw std::invalid_argument("channel block must be 8 or 16");
    const auto layout = block == 8 ? tag::nChw8c : tag::nChw16c;
    s.user_src = s.blocked_src = memory::desc(s.src, f32, layout);
    s.user_dst = s.blocked_dst = memory::desc(s.dst, f32, layout);
    return s;
  }
  s.user_src = memory::desc(s.src, f32, tag::nchw);
  s.user_dst = memory::desc(s.dst, f32, tag::nchw);
  for (auto [block, layout] : {std::pair{16, tag::nChw16c}, std::pair{8, tag::nChw8c}, std::pair{1, tag::nchw}}) {
    if (x[1] % block != 0) continue;
    s.blocked_src = memory::desc(s.src, f32, layout);
    s.blocked_dst = memory::desc(s.dst, f32, layout);
    if (block == 1 || std::string(forward_pd(s, dnnl::prop_kind::forward_training).impl_info_str()).rfind("ref", 0) != 0)
      break;
  }
  return s;
}

// Copies between MindSpore's plain tensor and a blocked scratch buffer.
memory to_blocked(dnnl::stream &stream, Scratch &scratch, size_t slot, const memory::desc &user,
                  const memory::desc &blocked, void *data) {
  auto &eng = cpu_engine();
  memory plain_mem(user, eng, data);
  if (blocked == user) return plain_mem;
  memory mem(blocked, eng, scratch.get(slot, blocked.get_size()));
  dnnl::reorder(plain_mem, mem).execute(stream, plain_mem, mem);
  return mem;
}

void to_user(dnnl::stream &stream, memory mem, const memory::desc &user, void *data) {
  if (mem.get_desc() == user) return;
  memory plain_mem(user, cpu_engine(), data);
  dnnl::reorder(mem, plain_mem).execute(stream, mem, plain_mem);
}

memory output(Scratch &scratch, size_t slot, const memory::desc &user, const memory::desc &blocked, void *data) {
  if (blocked == user) return memory(user, cpu_engine(), data);
  return memory(blocked, cpu_engine(), scratch.get(slot, blocked.get_size()));
}

}  // namespace
}  // namespace centerdet

using namespace centerdet;

// (x, params) -> y
CENTERDET_AOT(MaxPoolForward) {
  return guarded("MaxPoolForward", [&](Call &call) {
    PoolShape s = pool_shape(shapes[0], ndims[0], shapes[2], static_cast<const int64_t *>(params[1]));
    dnnl::stream stream(cpu_engine());
    auto pd = forward_pd(s, dnnl::prop_kind::forward_inference);
    memory src = to_blocked(stream, call.scratch(), 0, s.user_src, s.blocked_src, params[0]);
    memory dst = output(call.scratch(), 1, s.user_dst, s.blocked_dst, params[2]);
    dnnl::pooling_forward(pd).execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    to_user(stream, dst, s.user_dst, params[2]);
    stream.wait();
  });
}

// (dy, x, params) -> dx. The forward pass is run again for the positions of the maxima, which is
// cheaper than carrying a workspace tensor through MindSpore's graph.
CENTERDET_AOT(MaxPoolBackward) {
  return guarded("MaxPoolBackward", [&](Call &call) {
    PoolShape s = pool_shape(shapes[1], ndims[1], shapes[0], static_cast<const int64_t *>(params[2]));
    auto &eng = cpu_engine();
    dnnl::stream stream(eng);
    auto fwd = forward_pd(s, dnnl::prop_kind::forward_training);
    auto bwd = dnnl::pooling_backward::primitive_desc(eng, dnnl::algorithm::pooling_max, s.blocked_src,
                                                      s.blocked_dst, s.strides, s.kernel, s.dilation, s.pad_l,
                                                      s.pad_r, fwd);
    Scratch &scratch = call.scratch();
    memory src = to_blocked(stream, scratch, 0, s.user_src, s.blocked_src, params[1]);
    memory dst(fwd.dst_desc(), eng, scratch.get(1, fwd.dst_desc().get_size()));
    memory workspace(fwd.workspace_desc(), eng, scratch.get(2, fwd.workspace_desc().get_size()));
    dnnl::pooling_forward(fwd).execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst},
                                                {DNNL_ARG_WORKSPACE, workspace}});
    memory diff_dst = to_blocked(stream, scratch, 3, s.user_dst, s.blocked_dst, params[0]);
    memory diff_src = output(scratch, 4, s.user_src, s.blocked_src, params[3]);
    dnnl::pooling_backward(bwd).execute(stream, {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src},
                                                 {DNNL_ARG_WORKSPACE, workspace}});
    to_user(stream, diff_src, s.user_src, params[3]);
    stream.wait();
  });
}
