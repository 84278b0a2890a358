// Plans of the convolution kernels in conv.cc: the geometry of a call, the oneDNN primitive that
// runs it (blocked layouts, post-ops), and a bounded cache of both per problem.
#include <list>
#include <map>
#include <memory>
#include <stdexcept>
#include <utility>

#include "conv_plan.h"

namespace centerdet {
namespace conv_plan {
namespace {

using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

}  // namespace

int64_t same_total(int64_t in, int64_t k, int64_t s, int64_t d) {
  int64_t out = (in + s - 1) / s;
  int64_t total = (out - 1) * s + (k - 1) * d + 1 - in;
  return total > 0 ? total : 0;
}

memory::dims nchw(const int64_t *s, int ndim, int64_t *block) {
  *block = ndim == 5 ? s[4] : 0;
  return {s[0], ndim == 5 ? s[1] * s[4] : s[1], s[2], s[3]};
}

Geometry geometry(const int64_t *src, int src_ndim, const int64_t *w, const int64_t *dst, int dst_ndim,
                  const int64_t *p) {
  const int64_t groups = p[4];
  Geometry g;
  g.src = nchw(src, src_ndim, &g.src_block);
  g.dst = nchw(dst, dst_ndim, &g.dst_block);
  // A blocked map whose channels do not fill its last block holds zeros there (inference, see
  // MobileNetV2.fuse_folded); the weights give the real count.
  const int64_t in_channels = groups * w[1];
  if (g.src_block && g.src[1] > in_channels && g.src[1] - in_channels < g.src_block) g.src[1] = in_channels;
  if (g.dst_block && g.dst[1] > w[0] && g.dst[1] - w[0] < g.dst_block) g.dst[1] = w[0];
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

memory::desc user(const memory::dims &dims, int64_t block) {
  if (block == 0) return plain(dims);
  if (block == 8) return memory::desc(dims, f32, tag::nChw8c);
  if (block == 16) return memory::desc(dims, f32, tag::nChw16c);
  throw std::invalid_argument("channel block " + std::to_string(block) + " (expected 8 or 16)");
}

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
// pin_src: take the source in MindSpore's blocked layout (a retry, see make_plan).
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
    // Left to choose, oneDNN may take a GEMM on NCHW for a blocked source (the heads' 1×1 convs of
    // 15 or 80 channels): reordering a 64-channel map costs more than the blocked kernel it avoids.
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

}  // namespace conv_plan
}  // namespace centerdet

// The channel block oneDNN's direct kernels take on this CPU (16 with AVX-512, 8 with AVX2; 0 if
// neither), asked of a ResNet-sized 3×3 convolution: the layout ResNet then keeps (models/layers.py).
extern "C" __attribute__((visibility("default"))) int ConvChannelBlock() {
  int block = 0;
  centerdet::guarded("ConvChannelBlock", [&](centerdet::Call &) {
    centerdet::conv_plan::Geometry g;
    g.src = {1, 64, 56, 56}, g.dst = {1, 64, 56, 56}, g.weights = {64, 64, 3, 3};
    g.strides = {1, 1}, g.dilates = {0, 0}, g.pad_l = {1, 1}, g.pad_r = {1, 1};
    const auto want = centerdet::conv_plan::forward_pd(g, false).src_desc();
    for (int b : {16, 8}) {
      if (want == centerdet::conv_plan::user(g.src, b)) block = b;
    }
  });
  return block;
}

// One line per cached problem, "<key> <oneDNN implementation>", for tests and benchmarks.
extern "C" __attribute__((visibility("default"))) const char *ConvImplementations() {
  static std::string out;
  out.clear();
  centerdet::guarded("ConvImplementations", [&](centerdet::Call &) {
    for (auto &entry : centerdet::conv_plan::plan_list) out += entry.first + " " + entry.second->impl + "\n";
  });
  return out.c_str();
}
