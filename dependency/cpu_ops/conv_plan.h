// The convolution kernels' problems (conv.cc): a call's geometry from MindSpore's shapes and the
// conv params vector, and the cached oneDNN primitive with the reorders around it (conv_plan.cc).
#ifndef CENTERDET_CPU_OPS_CONV_PLAN_H_
#define CENTERDET_CPU_OPS_CONV_PLAN_H_

#include <cstdint>
#include <string>

#include "common.h"

namespace centerdet {
namespace conv_plan {

using dnnl::memory;

struct Geometry {
  memory::dims src, weights, dst, strides, dilates, pad_l, pad_r;
  int64_t src_block = 0, dst_block = 0;  // channel block of MindSpore's tensors (0: plain NCHW)
  bool bias = false;  // forward: add a bias of dst's channels; backward-weights: also its gradient
  int act = 0;        // forward: 0 none, 1 ReLU, 2 ReLU6 (after the sum, with one)
  bool sum = false;   // forward: dst = act(conv + bias + a residual of dst's shape)
  // forward of a 1×1 conv: a 3×3 depthwise conv (pad 1) of this stride and activation follows in
  // the same kernel, whose output (dw_dst) the primitive writes instead of dst (append_dw)
  int64_t dw_stride = 0;
  int dw_act = 0;
  memory::dims dw_dst;
  bool pointwise() const {
    return src_block == 0 && dst_block == 0 && weights.size() == 4 && weights[2] == 1 && weights[3] == 1 &&
           strides[0] == 1 && strides[1] == 1 && pad_l[0] == 0 && pad_l[1] == 0 && pad_r[0] == 0 && pad_r[1] == 0;
  }
};

// One cached problem: the primitive and, for its two inputs and its output, the layout it wants,
// MindSpore's plain layout and the reorder between them (when they differ).
struct Plan {
  dnnl::primitive prim;
  bool bias;
  int arg[3];
  memory::desc want[3], user[3];
  dnnl::reorder reorder[3];
  bool needs_reorder[3];
  memory::desc scratchpad;
  std::string impl;
  // a fused depthwise conv's weights (Geometry::dw_stride): the layout it wants, MindSpore's, the reorder
  memory::desc dw_want, dw_user;
  dnnl::reorder dw_reorder;
};

// src (N, C, H, W), w (O, C/g, kh, kw) as MindSpore stores it, dst (N, O, Ho, Wo); src and dst
// may be channel-blocked.
Geometry geometry(const int64_t *src, int src_ndim, const int64_t *w, const int64_t *dst, int dst_ndim,
                  const int64_t *p);
// A MindSpore tensor's logical NCHW dims and channel block: (N, C, H, W) or (N, C/B, H, W, B).
memory::dims nchw(const int64_t *s, int ndim, int64_t *block);
memory::desc plain(const memory::dims &dims);
// The layout of an activation as MindSpore holds it.
memory::desc user(const memory::dims &dims, int64_t block);
// The plan of a problem ('f' forward, 'd' backward-data, 'w' backward-weights), made on first use.
Plan &plan_for(char kind, const Geometry &g);

}  // namespace conv_plan
}  // namespace centerdet

#endif  // CENTERDET_CPU_OPS_CONV_PLAN_H_
