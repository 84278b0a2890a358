// 2-D convolution forward, backward-data and backward-weights on oneDNN's blocked layouts.
//
// MindSpore hands oneDNN plain NCHW tensors, which on CPU means im2col + GEMM kernels (capped at
// AVX2, see common.cc). Here each call reorders its operands to the layouts oneDNN prefers
// (nChw16c and friends), runs the direct JIT kernel and reorders the result back, as PyTorch does.
//
// The last input of every convolution kernel is an int64 vector:
//   [stride_h, stride_w, dilation_h, dilation_w, groups, same, pad_top, pad_bottom, pad_left, pad_right, act,
//    frozen]
// same = 1 is MindSpore's pad_mode "same" (pads from the shapes); otherwise the pads are given.
// act (forward only, for inference: nothing differentiates it): 1 applies a ReLU, 2 a ReLU6 to the
// output inside the convolution (a oneDNN post-op), where a BatchNorm folded into the conv left its
// activation (models/fuse.py); that saves a pass over every such activation map.
// frozen (inference networks, models/fuse.py): a non-zero id says this layer's weights no longer
// change, so their reorder into the kernel's blocked layout is kept (per id, while MindSpore hands
// the same weight buffer) instead of being redone at every call, as onnxruntime and inductor
// prepack theirs once.
// A transposed convolution is the backward-data pass of the convolution it transposes, so the
// three kernels serve nn.Conv2dTranspose too.
//
// A 5-D tensor (N, C/B, H, W, B) is already in oneDNN's nChw{B}c layout (B = 8 or 16, see
// ConvChannelBlock): ResNet keeps its activations that way from the stem conv to its outputs
// (models/layers.py), so only the weights are reordered per call. A 4-D tensor is plain NCHW.
//
// One exception to the blocked layouts: a 1×1, stride-1, unpadded forward convolution is a plain
// matrix product on NCHW, which oneDNN's GEMM runs as fast as the blocked kernel (measured here:
// 0.7-1.5 ms either way at CenterFace's and the DCN's 1×1 shapes) without the two reorders; so
// those stay in MindSpore's layout. Their backward passes are 3-8× faster blocked and reorder.
#include <cstring>
#include <list>
#include <map>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "common.h"

namespace centerdet {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

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

int64_t same_total(int64_t in, int64_t k, int64_t s, int64_t d) {
  int64_t out = (in + s - 1) / s;
  int64_t total = (out - 1) * s + (k - 1) * d + 1 - in;
  return total > 0 ? total : 0;
}

// A MindSpore tensor's logical NCHW dims and channel block: (N, C, H, W) or (N, C/B, H, W, B).
memory::dims nchw(const int64_t *s, int ndim, int64_t *block) {
  *block = ndim == 5 ? s[4] : 0;
  return {s[0], ndim == 5 ? s[1] * s[4] : s[1], s[2], s[3]};
}

// src (N, C, H, W), w (O, C/g, kh, kw) as MindSpore stores it, dst (N, O, Ho, Wo); src and dst
// may be channel-blocked.
Geometry geometry(const int64_t *src, int src_ndim, const int64_t *w, const int64_t *dst, int dst_ndim,
                  const int64_t *p) {
  const int64_t groups = p[4];
  Geometry g;
  g.src = nchw(src, src_ndim, &g.src_block);
  g.dst = nchw(dst, dst_ndim, &g.dst_block);
  src = g.src.data();
  dst = g.dst.data();
  g.weights = groups == 1 ? memory::dims{w[0], w[1], w[2], w[3]}
                          : memory::dims{groups, w[0] / groups, w[1], w[2], w[3]};
  g.strides = {p[0], p[1]};
  g.dilates = {p[2] - 1, p[3] - 1};  // oneDNN counts the gaps
  int64_t top = p[6], left = p[8];
  if (p[5]) {
    top = same_total(src[2], w[2], p[0], p[2]) / 2;
    left = same_total(src[3], w[3], p[1], p[3]) / 2;
  }
  g.pad_l = {top, left};
  // Bottom/right pads follow from the shapes: a transposed convolution's output size decides them.
  g.pad_r = {(dst[2] - 1) * p[0] + (w[2] - 1) * p[2] + 1 - src[2] - top,
             (dst[3] - 1) * p[1] + (w[3] - 1) * p[3] + 1 - src[3] - left};
  return g;
}

memory::desc plain(const memory::dims &dims) {
  return memory::desc(dims, f32, dims.size() == 4 ? tag::abcd : tag::abcde);
}

memory::desc any(const memory::dims &dims) { return memory::desc(dims, f32, tag::any); }

// The layout of an activation as MindSpore holds it.
memory::desc user(const memory::dims &dims, int64_t block) {
  if (block == 0) return plain(dims);
  if (block == 8) return memory::desc(dims, f32, tag::nChw8c);
  if (block == 16) return memory::desc(dims, f32, tag::nChw16c);
  throw std::invalid_argument("channel block " + std::to_string(block) + " (expected 8 or 16)");
}

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

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void append_activation(dnnl::post_ops &ops, int act) {
  if (act == 1) {
    ops.append_eltwise(dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  } else if (act == 2) {
    ops.append_eltwise(dnnl::algorithm::eltwise_clip, 0.0f, 6.0f);
  }
}

// with_attr: the primitive itself (user scratchpad); without: the hint backward passes need.
dnnl::convolution_forward::primitive_desc forward_pd(const Geometry &g, bool with_attr, bool pin_src = false) {
  auto attr = with_attr ? user_scratchpad() : dnnl::primitive_attr();
  if (with_attr && (g.act || g.sum || g.dw_stride)) {
    dnnl::post_ops ops;
    if (g.sum) ops.append_sum(1.0f);
    append_activation(ops, g.act);
    if (g.dw_stride) {
      ops.append_dw(f32, f32, f32, 3, g.dw_stride, 1);
      append_activation(ops, g.dw_act);
    }
    attr.set_post_ops(ops);
  }
  const bool keep_plain = with_attr && g.pointwise();
  const auto src = keep_plain ? plain(g.src) : pin_src && g.src_block ? user(g.src, g.src_block) : any(g.src),
             weights = keep_plain ? plain(g.weights) : any(g.weights), dst = keep_plain ? plain(g.dst) : any(g.dst);
  if (g.bias && with_attr) {
    return dnnl::convolution_forward::primitive_desc(
        cpu_engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src, weights,
        memory::desc({g.dst[1]}, f32, tag::a), dst, g.strides, g.dilates, g.pad_l, g.pad_r, attr);
  }
  return dnnl::convolution_forward::primitive_desc(cpu_engine(), dnnl::prop_kind::forward_training,
                                                   dnnl::algorithm::convolution_direct, src, weights, dst, g.strides,
                                                   g.dilates, g.pad_l, g.pad_r, attr);
}

// With both gradients channel-blocked, the kernel that keeps that layout where oneDNN has one:
// left to choose ("any"), it takes an NHWC kernel for the neck's 2×2/2 transposed convs, whose two
// reorders around it cost more than the kernel.
dnnl::convolution_backward_data::primitive_desc backward_data_pd(const Geometry &g) {
  if (g.src_block && g.dst_block) {
    try {
      return dnnl::convolution_backward_data::primitive_desc(
          cpu_engine(), dnnl::algorithm::convolution_direct, user(g.src, g.src_block), any(g.weights),
          user(g.dst, g.dst_block), g.strides, g.dilates, g.pad_l, g.pad_r, forward_pd(g, false), user_scratchpad());
    } catch (const dnnl::error &) {
    }
  }
  return dnnl::convolution_backward_data::primitive_desc(
      cpu_engine(), dnnl::algorithm::convolution_direct, any(g.src), any(g.weights), any(g.dst), g.strides,
      g.dilates, g.pad_l, g.pad_r, forward_pd(g, false), user_scratchpad());
}

template <typename PD>
Plan *finish(Plan *plan, const PD &pd, const memory::desc &in0, const memory::desc &in1,
             const memory::desc &out) {
  auto &eng = cpu_engine();
  const memory::desc want[3] = {in0, in1, out};
  for (int i = 0; i < 3; ++i) {
    plan->want[i] = want[i];
    plan->needs_reorder[i] = want[i] != plan->user[i];
    if (!plan->needs_reorder[i]) continue;
    auto rpd = i < 2 ? dnnl::reorder::primitive_desc(eng, plan->user[i], eng, want[i])
                     : dnnl::reorder::primitive_desc(eng, want[i], eng, plan->user[i]);
    plan->reorder[i] = dnnl::reorder(rpd);
  }
  plan->scratchpad = pd.scratchpad_desc();
  plan->impl = pd.impl_info_str();
  return plan;
}

Plan *make_plan(char kind, const Geometry &g) {
  auto plan = new Plan;
  plan->bias = g.bias && kind != 'd';
  if (kind == 'f') {
    auto pd = forward_pd(g, true);
    if (g.src_block && pd.src_desc() != user(g.src, g.src_block)) {
      try {
        pd = forward_pd(g, true, true);
      } catch (const dnnl::error &) {
      }
    }
    plan->prim = dnnl::convolution_forward(pd);
    plan->user[0] = user(g.src, g.src_block), plan->user[1] = plain(g.weights),
    plan->user[2] = user(g.dw_stride ? g.dw_dst : g.dst, g.dst_block);
    plan->arg[0] = DNNL_ARG_SRC, plan->arg[1] = DNNL_ARG_WEIGHTS, plan->arg[2] = DNNL_ARG_DST;
    if (g.dw_stride) {
      plan->dw_want = pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS);
      plan->dw_user = plain({g.dst[1], 1, 1, 3, 3});
      plan->dw_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), plan->dw_user, cpu_engine(),
                                                                     plan->dw_want));
    }
    return finish(plan, pd, pd.src_desc(), pd.weights_desc(), pd.dst_desc());
  }
  if (kind == 'd') {
    auto pd = backward_data_pd(g);
    plan->prim = dnnl::convolution_backward_data(pd);
    plan->user[0] = user(g.dst, g.dst_block), plan->user[1] = plain(g.weights),
    plan->user[2] = user(g.src, g.src_block);
    plan->arg[0] = DNNL_ARG_DIFF_DST, plan->arg[1] = DNNL_ARG_WEIGHTS, plan->arg[2] = DNNL_ARG_DIFF_SRC;
    return finish(plan, pd, pd.diff_dst_desc(), pd.weights_desc(), pd.diff_src_desc());
  }
  auto pd = g.bias ? dnnl::convolution_backward_weights::primitive_desc(
                        cpu_engine(), dnnl::algorithm::convolution_direct, any(g.src), any(g.weights),
                        memory::desc({g.dst[1]}, f32, tag::a), any(g.dst), g.strides, g.dilates, g.pad_l,
                        g.pad_r, forward_pd(g, false), user_scratchpad())
                  : dnnl::convolution_backward_weights::primitive_desc(
                        cpu_engine(), dnnl::algorithm::convolution_direct, any(g.src), any(g.weights), any(g.dst),
                        g.strides, g.dilates, g.pad_l, g.pad_r, forward_pd(g, false), user_scratchpad());
  plan->prim = dnnl::convolution_backward_weights(pd);
  plan->user[0] = user(g.dst, g.dst_block), plan->user[1] = user(g.src, g.src_block),
  plan->user[2] = plain(g.weights);
  plan->arg[0] = DNNL_ARG_DIFF_DST, plan->arg[1] = DNNL_ARG_SRC, plan->arg[2] = DNNL_ARG_DIFF_WEIGHTS;
  return finish(plan, pd, pd.diff_dst_desc(), pd.src_desc(), pd.diff_weights_desc());
}

std::string key_of(char kind, const Geometry &g) {
  std::string k(1, kind);
  if (g.bias) k += 'b';
  if (g.act) k += g.act == 1 ? 'r' : '6';
  if (g.sum) k += '+';
  if (g.dw_stride) k += 'D' + std::to_string(g.dw_stride) + std::to_string(g.dw_act);
  k += 's' + std::to_string(g.src_block) + 'd' + std::to_string(g.dst_block);
  for (const auto *dims : {&g.src, &g.weights, &g.dst, &g.strides, &g.dilates, &g.pad_l, &g.pad_r}) {
    k += '|';
    for (auto v : *dims) k += std::to_string(v) + ',';
  }
  return k;
}

// Least-recently-used cache of plans. Evaluation at the images' own sizes meets a new input shape
// per image size; the bound keeps the JIT code of old shapes from piling up.
constexpr size_t kMaxPlans = 512;
std::list<std::pair<std::string, std::unique_ptr<Plan>>> plan_list;
std::map<std::string, decltype(plan_list)::iterator> plan_index;

Plan &plan_for(char kind, const Geometry &g) {
  std::string key = key_of(kind, g);
  auto it = plan_index.find(key);
  if (it != plan_index.end()) {
    plan_list.splice(plan_list.begin(), plan_list, it->second);
    return *it->second->second;
  }
  plan_list.emplace_front(key, std::unique_ptr<Plan>(make_plan(kind, g)));
  plan_index[key] = plan_list.begin();
  if (plan_list.size() > kMaxPlans) {
    plan_index.erase(plan_list.back().first);
    plan_list.pop_back();
  }
  return *plan_list.front().second;
}

// Weights of frozen layers, reordered once: id -> (the buffer they came from, its layout, the copy).
// Bounded like the plans; a network rebuilt in the same process gets new ids.
struct Packed {
  const void *source;
  memory::desc desc;
  std::unique_ptr<char[]> data;
};
constexpr size_t kMaxPackedBytes = size_t(1) << 30;
size_t packed_bytes = 0;
std::list<std::pair<int64_t, Packed>> packed_list;
std::map<int64_t, decltype(packed_list)::iterator> packed_index;

void *packed_weights(int64_t id, void *weights, const memory::desc &from, const memory::desc &want,
                     const dnnl::reorder &reorder, dnnl::stream &stream) {
  auto it = packed_index.find(id);
  if (it != packed_index.end()) {
    auto &entry = it->second->second;
    if (entry.source == weights && entry.desc == want) {
      packed_list.splice(packed_list.begin(), packed_list, it->second);
      return entry.data.get();
    }
    packed_bytes -= entry.desc.get_size();
    packed_list.erase(it->second);
    packed_index.erase(it);
  }
  const size_t bytes = want.get_size();
  Packed entry{weights, want, std::unique_ptr<char[]>(new char[bytes])};
  memory user(from, cpu_engine(), weights), packed(want, cpu_engine(), entry.data.get());
  reorder.execute(stream, user, packed);
  packed_list.emplace_front(id, std::move(entry));
  packed_index[id] = packed_list.begin();
  packed_bytes += bytes;
  while (packed_bytes > kMaxPackedBytes && packed_list.size() > 1) {
    packed_bytes -= packed_list.back().second.desc.get_size();
    packed_index.erase(packed_list.back().first);
    packed_list.pop_back();
  }
  return packed_list.front().second.data.get();
}

// A fused depthwise conv's weights, bias and frozen id (0: not frozen).
struct Depthwise {
  void *weights, *bias;
  int64_t frozen;
};

// frozen: see the params vector above; only ever set where in1 is the weights (forward, backward-data).
// residual (forward with a sum post-op): the tensor, shaped like out, that the kernel adds.
void execute(Call &call, const Plan &plan, void *in0, void *in1, void *out, void *bias, int64_t frozen = 0,
             void *residual = nullptr, const Depthwise *dw = nullptr) {
  auto &eng = cpu_engine();
  dnnl::stream stream(eng);
  void *user_ptr[3] = {in0, in1, out};
  memory mem[3];
  for (int i = 0; i < 3; ++i) {
    if (i == 1 && frozen && plan.needs_reorder[1]) {
      mem[1] = memory(plan.want[1], eng,
                      packed_weights(frozen, in1, plan.user[1], plan.want[1], plan.reorder[1], stream));
      continue;
    }
    mem[i] = plan.needs_reorder[i] ? memory(plan.want[i], eng, call.scratch().get(i, plan.want[i].get_size()))
                                   : memory(plan.user[i], eng, user_ptr[i]);
    if (i < 2 && plan.needs_reorder[i]) {
      memory user(plan.user[i], eng, user_ptr[i]);
      plan.reorder[i].execute(stream, user, mem[i]);
    }
  }
  if (residual && plan.needs_reorder[2]) {  // the sum post-op reads the residual from dst
    memory user(plan.user[2], eng, residual);
    dnnl::reorder(user, mem[2]).execute(stream, user, mem[2]);
  } else if (residual) {
    std::memcpy(out, residual, plan.user[2].get_size());
  }
  memory scratchpad(plan.scratchpad, eng, call.scratch().get(3, plan.scratchpad.get_size()));
  std::unordered_map<int, memory> args = {{plan.arg[0], mem[0]}, {plan.arg[1], mem[1]}, {plan.arg[2], mem[2]},
                                          {DNNL_ARG_SCRATCHPAD, scratchpad}};
  if (plan.bias) {
    // forward: the bias to add (dst's channels); backward-weights: where its gradient goes
    const bool forward = plan.arg[2] == DNNL_ARG_DST;
    const memory::dim channels = forward ? plan.user[2].get_dims()[1] : plan.user[0].get_dims()[1];
    args[forward ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS] = memory(memory::desc({channels}, f32, tag::a), eng, bias);
  }
  if (dw) {
    void *weights = dw->weights;
    if (plan.dw_want != plan.dw_user && dw->frozen) {
      weights = packed_weights(dw->frozen, dw->weights, plan.dw_user, plan.dw_want, plan.dw_reorder, stream);
    } else if (plan.dw_want != plan.dw_user) {
      weights = call.scratch().get(4, plan.dw_want.get_size());
      memory user(plan.dw_user, eng, dw->weights), packed(plan.dw_want, eng, weights);
      plan.dw_reorder.execute(stream, user, packed);
    }
    args[DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS] = memory(plan.dw_want, eng, weights);
    args[DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_BIAS] = memory(memory::desc({plan.dw_user.get_dims()[0]}, f32, tag::a),
                                                            eng, dw->bias);
  }
  plan.prim.execute(stream, args);
  if (plan.needs_reorder[2]) {
    memory user(plan.user[2], eng, out);
    plan.reorder[2].execute(stream, mem[2], user);
  }
  stream.wait();
}

// src, w, dst: indices of those tensors' shapes (forward or backward roles alike).
int conv(const char *name, char kind, int64_t **shapes, int *ndims, int src, int w, int dst, void **params,
         int param_index, void *in0, void *in1, void *out, void *bias = nullptr, void *residual = nullptr) {
  return guarded(name, [&](Call &call) {
    const auto *p = static_cast<const int64_t *>(params[param_index]);
    Geometry g = geometry(shapes[src], ndims[src], shapes[w], shapes[dst], ndims[dst], p);
    g.bias = bias != nullptr;
    g.sum = residual != nullptr;
    if (kind == 'f') g.act = static_cast<int>(p[10]);
    const int64_t frozen = kind != 'w' && shapes[param_index][0] > 11 ? p[11] : 0;
    execute(call, plan_for(kind, g), in0, in1, out, bias, frozen, residual);
  });
}

// (x, w, b, wd, bd, params, dw_params) -> dw_act(depthwise3x3(act(conv1x1(x, w) + b), wd) + bd) in
// one kernel (append_dw); dw_params is the depthwise conv's own vector (stride, activation, frozen).
int conv_dw(int64_t **shapes, int *ndims, void **params) {
  return guarded("ConvForwardBiasDw", [&](Call &call) {
    const auto *p = static_cast<const int64_t *>(params[5]), *dp = static_cast<const int64_t *>(params[6]);
    int64_t block = 0;
    const auto src = nchw(shapes[0], ndims[0], &block), out = nchw(shapes[7], ndims[7], &block);
    // the 1×1's output: the source's size, the depthwise conv's channels and layout
    int64_t mid[5] = {src[0], out[1], src[2], src[3], 0};
    if (block) mid[1] = out[1] / block, mid[4] = block;
    Geometry g = geometry(shapes[0], ndims[0], shapes[1], mid, block ? 5 : 4, p);
    g.bias = true;
    g.act = static_cast<int>(p[10]);
    g.dw_stride = dp[0], g.dw_act = static_cast<int>(dp[10]), g.dw_dst = out;
    const Depthwise dw{params[3], params[4], dp[11]};
    execute(call, plan_for('f', g), params[0], params[1], params[7], params[2], p[11], nullptr, &dw);
  });
}

}  // namespace
}  // namespace centerdet

using centerdet::conv;

CENTERDET_AOT(ConvForwardBiasDw) { return centerdet::conv_dw(shapes, ndims, params); }

// (x, w, params) -> y
CENTERDET_AOT(ConvForward) {
  return conv("ConvForward", 'f', shapes, ndims, 0, 1, 3, params, 2, params[0], params[1], params[3]);
}

// (x, w, b, params) -> y + b
CENTERDET_AOT(ConvForwardBias) {
  return conv("ConvForwardBias", 'f', shapes, ndims, 0, 1, 4, params, 3, params[0], params[1], params[4],
              params[2]);
}

// (x, w, b, r, params) -> act(y + b + r), inference only: r (shaped like y) added inside the kernel
CENTERDET_AOT(ConvForwardBiasSum) {
  return conv("ConvForwardBiasSum", 'f', shapes, ndims, 0, 1, 5, params, 4, params[0], params[1], params[5],
              params[2], params[3]);
}

// (dy, w, params) -> dx; dx's shape comes from MindSpore's shape inference (transposed convolution)
CENTERDET_AOT(ConvBackwardData) {
  return conv("ConvBackwardData", 'd', shapes, ndims, 3, 1, 0, params, 2, params[0], params[1],
              params[3]);
}

// (dy, w, params, like) -> dx shaped like the fourth input, whose data is not read (conv gradient)
CENTERDET_AOT(ConvBackwardDataLike) {
  return conv("ConvBackwardDataLike", 'd', shapes, ndims, 4, 1, 0, params, 2, params[0], params[1],
              params[4]);
}

// (dy, x, params) -> dw
CENTERDET_AOT(ConvBackwardWeights) {
  return conv("ConvBackwardWeights", 'w', shapes, ndims, 1, 3, 0, params, 2, params[0], params[1],
              params[3]);
}

// (dy, x, params) -> (dw, db), the bias gradient from the same pass
CENTERDET_AOT(ConvBackwardWeightsBias) {
  return conv("ConvBackwardWeightsBias", 'w', shapes, ndims, 1, 3, 0, params, 2, params[0], params[1],
              params[3], params[4]);
}

// The channel block oneDNN's direct kernels take on this CPU (16 with AVX-512, 8 with AVX2; 0 if
// neither), asked of a ResNet-sized 3×3 convolution: the layout ResNet then keeps (models/layers.py).
extern "C" __attribute__((visibility("default"))) int ConvChannelBlock() {
  int block = 0;
  centerdet::guarded("ConvChannelBlock", [&](centerdet::Call &) {
    centerdet::Geometry g;
    g.src = {1, 64, 56, 56}, g.dst = {1, 64, 56, 56}, g.weights = {64, 64, 3, 3};
    g.strides = {1, 1}, g.dilates = {0, 0}, g.pad_l = {1, 1}, g.pad_r = {1, 1};
    const auto want = centerdet::forward_pd(g, false).src_desc();
    for (int b : {16, 8}) {
      if (want == centerdet::user(g.src, b)) block = b;
    }
  });
  return block;
}

// One line per cached problem, "<key> <oneDNN implementation>", for tests and benchmarks.
extern "C" __attribute__((visibility("default"))) const char *ConvImplementations() {
  static std::string out;
  out.clear();
  centerdet::guarded("ConvImplementations", [&](centerdet::Call &) {
    for (auto &entry : centerdet::plan_list) out += entry.first + " " + entry.second->impl + "\n";
  });
  return out.c_str();
}

// How many frozen layers' weights are held reordered (tests: a folded network packs each once).
extern "C" __attribute__((visibility("default"))) int ConvPackedWeights() {
  int n = 0;
  centerdet::guarded("ConvPackedWeights", [&](centerdet::Call &) { n = static_cast<int>(centerdet::packed_list.size()); });
  return n;
}
