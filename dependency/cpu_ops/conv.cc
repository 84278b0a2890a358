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
#include <memory>
#include <unordered_map>
#include <utility>

#include "conv_plan.h"

namespace centerdet {
namespace {

using namespace conv_plan;  // the plans' vocabulary throughout this file
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

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
    const auto src = nchw(shapes[0], ndims[0], &block);
    auto out = nchw(shapes[7], ndims[7], &block);
    out[1] = shapes[1][0];  // the channels, without a last block's padding
    // the 1×1's output: the source's size, the depthwise conv's channels and layout
    int64_t mid[5] = {src[0], out[1], src[2], src[3], 0};
    if (block) mid[1] = (out[1] + block - 1) / block, mid[4] = block;
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

// How many frozen layers' weights are held reordered (tests: a folded network packs each once).
extern "C" __attribute__((visibility("default"))) int ConvPackedWeights() {
  int n = 0;
  centerdet::guarded("ConvPackedWeights",
                     [&](centerdet::Call &) { n = static_cast<int>(centerdet::packed_list.size()); });
  return n;
}
