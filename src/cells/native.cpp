// The time loops of the built-in cells in C++ (src/cells/native.py builds and loads this file).
//
// Each loop computes, step by step, the equations of the cell's Python hooks (fused_step,
// fused_step_backward in src/cells/*.py) on raw float32 buffers: the elementwise arithmetic of a
// step runs as one fused pass, the matrix products call the BLAS routine behind torch's own
// at::addmm (sgemm_), and sigmoid and tanh are ATen's vectorised calls. What goes away is the
// Python interpreter between the operations and ATen's per-operation overhead, which at small
// sizes (32 units, batch 32) cost more than the arithmetic.
//
// The results equal the Python loop's up to float32 rounding, not bit for bit: the order of the
// additions, the use of fused multiply-adds and the BLAS kernel differ between CPUs and between
// the two paths. tests/test_cells.py compares the two with float32 tolerances, and
// src/cells/native.py checks the same at load time on several shapes, turning the loops off
// (the Python loops then run) where they do not agree. Only float32 CPU tensors come here;
// native.py sends everything else (float64, other devices) to the Python loop.
//
// Operators, in the namespace `warmup_rnn` (torch.ops.warmup_rnn.*), for CELL in
// {gru, mgu, rnn, lstm, brc, nbrc}:
//
//   CELL_forward(gx, state[], weights[], keep?, save) -> [ys, *final_state, *saved]
//     gx (L, N, G): the input projection of every step; state: the initial state; keep
//     (L, N, 1) bool: whether each sample still runs at each step (its `lengths`);
//     saved (only with `save`): per step, the states beyond h, then the cell's `aux`,
//     each stacked over time (L, N, *).
//   CELL_backward(d_ys?, d_final[], ys, state0[], saved[], weights[], keep?)
//     -> [d_gx, *d_state0, d_rec]
//     d_rec: the stacked `d_rec_t` of the Python hook, absent when the hook has none.

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

using at::Tensor;
using std::vector;

namespace {

using Opt = c10::optional<Tensor>;

// A row-major (N, *) float view: element (i, j) at p[i * ld + j].
struct Rows {
  float* p;
  int64_t ld;
  Rows(const float* q, int64_t ld_) : p(const_cast<float*>(q)), ld(ld_) {}
  float& operator()(int64_t i, int64_t j) const { return p[i * ld + j]; }
};

#define WARMUP_INLINE static inline __attribute__((always_inline))

// a * b + c: one fused multiply-add where the CPU has one (the AVX2 build of each kernel below),
// a product and a sum elsewhere.
WARMUP_INLINE float madd(float a, float b, float c) { return a * b + c; }

// GRU forwards, before the sigmoid: rz = gx_rz + gh_rz.
WARMUP_INLINE void gru_pre_rz(Rows gx, Rows gh, Rows rz, int64_t N, int64_t H2) {
  for (int64_t i = 0; i < N; ++i) {
    const float* __restrict__ a = &gx(i, 0), * __restrict__ b = &gh(i, 0);
    float* __restrict__ o = &rz(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H2; ++j) o[j] = a[j] + b[j];
  }
}

// GRU forwards, before the tanh: n = addcmul(gx_n, r, gh_n).
WARMUP_INLINE void gru_pre_n(Rows gx, Rows gh, Rows rz, Rows n, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const float* __restrict__ a = &gx(i, 2 * H), * __restrict__ b = &gh(i, 2 * H), * __restrict__ r = &rz(i, 0);
    float* __restrict__ o = &n(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) o[j] = madd(r[j], b[j], a[j]);
  }
}

// out = lerp(start, end, weight), ATen's two-sided formula, then the mask: rows past their
// length keep `prev`. (GRU: lerp(n, h, z); BRC, nBRC: lerp(h~, h, c); MGU: lerp(h, h~, f).)
WARMUP_INLINE void lerp_masked(Rows start, Rows end, Rows weight, const bool* keep, Rows prev,
                               Rows out, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    if (keep && !keep[i]) {
      std::memcpy(&out(i, 0), &prev(i, 0), H * sizeof(float));
      continue;
    }
    const float* __restrict__ a = &start(i, 0), * __restrict__ e = &end(i, 0), * __restrict__ w = &weight(i, 0);
    float* __restrict__ o = &out(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      const float diff = e[j] - a[j];
      const float low = madd(w[j], diff, a[j]), high = madd(-diff, 1.0f - w[j], e[j]);
      o[j] = std::fabs(w[j]) < 0.5f ? low : high;
    }
  }
}

// GRU backwards: the gradients of the pre-activations (r, z, n), dh * z and d_rec = d_n * r;
// with `keep` (the raw loop with lengths), rows past their length take zeros (`zero`).
WARMUP_INLINE void gru_back(Rows dh, const bool* keep, const float* zero, Rows h, Rows rz, Rows n,
                            Rows gh_n, Rows d_gx, Rows dh_z, Rows d_rec, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const float* __restrict__ g = !keep || keep[i] ? &dh(i, 0) : zero, * __restrict__ hp = &h(i, 0), * __restrict__ r = &rz(i, 0), * __restrict__ z = &rz(i, H), * __restrict__ nn = &n(i, 0),
                *c = &gh_n(i, 0);
    float* __restrict__ dr = &d_gx(i, 0), * __restrict__ dz = &d_gx(i, H), * __restrict__ dn = &d_gx(i, 2 * H), * __restrict__ gz = &dh_z(i, 0),
          *dc = &d_rec(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      const float g_z = g[j] * z[j];
      const float d_n = (g[j] - g_z) * madd(-nn[j], nn[j], 1.0f);
      dr[j] = (d_n * c[j]) * madd(-r[j], r[j], r[j]);
      dz[j] = (g[j] * (hp[j] - nn[j])) * madd(-z[j], z[j], z[j]);
      dn[j] = d_n;
      gz[j] = g_z;
      dc[j] = d_n * r[j];
    }
  }
}

// Each kernel twice on x86-64: built for AVX2 and FMA (chosen at run time where the CPU has
// them) and for the baseline instruction set; elsewhere (aarch64, ...) once, for the target.
// WARMUP_NATIVE_PLAIN=1 in the environment takes the baseline build on any CPU: what a CPU
// without AVX2 runs (make test checks it with ATEN_CPU_CAPABILITY=default).
#if defined(__x86_64__) || defined(__i386__)
bool use_avx2() {
  const char* plain = std::getenv("WARMUP_NATIVE_PLAIN");
  return !(plain && plain[0] == '1') && __builtin_cpu_supports("avx2") &&
         __builtin_cpu_supports("fma");
}
#define WARMUP_DISPATCH(name, params, args)                                                      \
  __attribute__((target("avx2,fma"))) void name##_avx2 params { name args; }                    \
  void name##_plain params { name args; }                                                        \
  void name##_any params {                                                                       \
    static const bool fast = use_avx2();                                                         \
    if (fast) name##_avx2 args; else name##_plain args;                                          \
  }
#else
#define WARMUP_DISPATCH(name, params, args) \
  void name##_any params { name args; }
#endif
WARMUP_DISPATCH(gru_pre_rz, (Rows gx, Rows gh, Rows rz, int64_t N, int64_t H2), (gx, gh, rz, N, H2))
WARMUP_DISPATCH(gru_pre_n, (Rows gx, Rows gh, Rows rz, Rows n, int64_t N, int64_t H),
                (gx, gh, rz, n, N, H))
WARMUP_DISPATCH(lerp_masked, (Rows start, Rows end, Rows weight, const bool* keep, Rows prev,
                              Rows out, int64_t N, int64_t H),
                (start, end, weight, keep, prev, out, N, H))
WARMUP_DISPATCH(gru_back, (Rows dh, const bool* keep, const float* zero, Rows h, Rows rz, Rows n,
                           Rows gh_n, Rows d_gx, Rows dh_z, Rows d_rec, int64_t N, int64_t H),
                (dh, keep, zero, h, rz, n, gh_n, d_gx, dh_z, d_rec, N, H))

// -- GRU (src/cells/gru.py) ----------------------------------------------------------------
// The GRU's loop works on raw pointers into (L, N, *) buffers: no tensor view per step, its
// matrix products by sgemm_ straight into those buffers (the bias copied in first), sigmoid and
// tanh as ATen's in-place calls on one view moved from step to step (Slide). With lengths
// (`keep`), the rows past their length keep their state forwards and carry their gradient
// backwards (add_carried). The other cells' loops follow the same pattern.
}  // namespace

// The BLAS routine ATen's CPU addmm ends in for float32 (at::native::cpublas::gemm, which is
// not exported): libtorch_cpu's sgemm_. Weak, so that a torch without it still loads this
// library; the raw loop is then off.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc) __attribute__((weak));

namespace {

// C (column-major, m x n, ldc) = op(A) op(B) + beta C, as at::addmm (beta = 1) and at::mm
// (beta = 0: C is not read) hand it to sgemm_.
void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float* c, int64_t ldc, float beta = 1.0f) {
  const int m_ = m, n_ = n, k_ = k, lda_ = lda, ldb_ = ldb, ldc_ = ldc;
  const float one = 1.0f;
  sgemm_(&ta, &tb, &m_, &n_, &k_, &one, a, &lda_, b, &ldb_, &beta, c, &ldc_);
}

// Step t's (N, C) slice of an (S, N, C) buffer, as one view moved from step to step: the ATen
// calls of the raw loops get a tensor without a new view per step.
struct Slide {
  Tensor view;
  int64_t stride;
  explicit Slide(const Tensor& buffer) : view(buffer.select(0, 0)), stride(buffer.stride(0)) {}
  Tensor& operator[](int64_t t) {
    view.unsafeGetTensorImpl()->set_storage_offset(t * stride);
    return view;
  }
};

// What the raw forward of a cell whose state is h alone returns: [ys, h_final], then, with
// `save`, its aux buffers (L, N, *).
vector<Tensor> raw_outputs(const Tensor& ys, bool save, vector<Tensor> aux) {
  vector<Tensor> out{ys, ys.select(0, ys.size(0) - 1)};
  if (save) out.insert(out.end(), aux.begin(), aux.end());
  return out;
}

// dst += src over n floats (d_state[0] + d_ys[t]; the mask's carried part after a product).
WARMUP_INLINE void add_into(float* __restrict__ dst, const float* __restrict__ src, int64_t n) {
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) dst[i] = dst[i] + src[i];
}
WARMUP_DISPATCH(add_into, (float* dst, const float* src, int64_t n), (dst, src, n))

// After a step back with lengths: the gradient of the rows past their length is carried over
// to the step before, d_prev += d there (the step itself saw zeros for those rows).
void add_carried(float* d_prev, const float* d, const bool* keep, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i)
    if (!keep[i]) add_into_any(d_prev + i * H, d + i * H, H);
}

// A tensor as the loops read it: float32 on the CPU, contiguous (copied where it is not).
Tensor f32(const Tensor& t, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.device().is_cpu(), "warmup_rnn: ", what,
              " must be a float32 CPU tensor, got ", t.toString(), " (other dtypes and devices "
              "run the cells' Python loops)");
  return t.contiguous();
}

vector<Tensor> f32(const vector<Tensor>& ts, const char* what) {
  vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(f32(t, what));
  return out;
}

// What every forward loop reads: the input projection gx (L, N, G) with each step contiguous,
// or one step for all (an input held constant in time, as VAA's, projected once and expanded:
// stride 0 in time, read in place); the state and weights contiguous; the lengths mask as
// (L, N, 1) bool.
struct Inputs {
  Tensor gx;
  vector<Tensor> state, weights;
  Opt keep;
  Inputs(const Tensor& gx_, const vector<Tensor>& state_, const vector<Tensor>& weights_,
         const Opt& keep_) : state(f32(state_, "state")), weights(f32(weights_, "weights")) {
    TORCH_CHECK(sgemm_ != nullptr, "warmup_rnn: this torch build exports no sgemm_");
    TORCH_CHECK(gx_.dim() == 3 && gx_.size(0) >= 1 && gx_.numel() <= INT32_MAX &&
                    state[0].dim() == 2 && state[0].size(0) == gx_.size(1),
                "warmup_rnn: gx must be (L >= 1, N, G) with N the state's rows");
    if (gx_.size(0) > 1 && gx_.stride(0) == 0)
      gx = f32(gx_.select(0, 0), "gx").unsqueeze(0).expand({gx_.size(0), -1, -1});
    else
      gx = f32(gx_, "gx");
    if (keep_) {
      TORCH_CHECK(keep_->dim() == 3 && keep_->size(0) == gx_.size(0) &&
                      keep_->size(1) == gx_.size(1) && keep_->size(2) == 1,
                  "warmup_rnn: keep must be (L, N, 1)");
      keep = keep_->to(at::kBool).contiguous();
    }
  }
};

// What every backward loop reads besides its cell's own buffers: d_ys (contiguous), the
// lengths mask, and a row of zeros for the rows past their length.
struct RawBack {
  Tensor d_ys, keep_t;
  const float* dys;
  const bool* keep;
  vector<float> zero;
  int64_t N, H;
  RawBack(const Opt& d_ys_, const Opt& keep_, int64_t N_, int64_t H_)
      : d_ys(d_ys_ ? f32(*d_ys_, "d_ys") : Tensor()),
        keep_t(keep_ ? keep_->to(at::kBool).contiguous() : Tensor()),
        dys(d_ys.defined() ? d_ys.data_ptr<float>() : nullptr),
        keep(keep_t.defined() ? keep_t.data_ptr<bool>() : nullptr), zero(H_, 0.0f), N(N_), H(H_) {}
  // Step t: dh += d_ys[t]; returns the step's mask row (nullptr: none).
  const bool* step(int64_t t, float* dh) const {
    if (dys) add_into_any(dh, dys + t * N * H, N * H);
    return keep ? keep + t * N : nullptr;
  }
  // After the step's products, with lengths only: the rows past their length carry d over.
  void carry(float* d_prev, const float* d, const bool* keep_t) const {
    if (keep_t) add_carried(d_prev, d, keep_t, N, H);
  }
};

// The incoming gradient of the final state, as a buffer the backward loop may overwrite.
Tensor grad_buffer(const Tensor& d) { return f32(d, "d_final").clone(at::MemoryFormat::Contiguous); }

vector<Tensor> gru_forward_raw(const Tensor& gx, const Tensor& h0, const Tensor& w,
                               const Tensor& b, const Opt& keep, bool save) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t L = gx.size(0), N = h0.size(0), H = h0.size(1), S = save ? L : 1;
  Tensor ys = at::empty({L, N, H}, h0.options());
  Tensor rz = at::empty({S, N, 2 * H}, h0.options()), n = at::empty({S, N, H}, h0.options());
  Tensor gh = at::empty({S, N, 3 * H}, h0.options());
  Slide rz_t(rz), n_t(n);  // for ATen's sigmoid_ and tanh_
  const float *gx_p = gx.data_ptr<float>(), *w_p = w.data_ptr<float>(), *b_p = b.data_ptr<float>();
  const bool* keep_p = keep ? keep->data_ptr<bool>() : nullptr;
  float *ys_p = ys.data_ptr<float>(), *rz_p = rz.data_ptr<float>(), *n_p = n.data_ptr<float>(),
        *gh_p = gh.data_ptr<float>();
  for (int64_t t = 0; t < L; ++t) {
    const int64_t k = save ? t : 0;
    const float* h = t > 0 ? ys_p + (t - 1) * N * H : h0.data_ptr<float>();
    const float* gx_t = gx_p + t * gx.stride(0);
    float *gh_k = gh_p + k * N * 3 * H, *rz_k = rz_p + k * N * 2 * H, *n_k = n_p + k * N * H;
    // at::addmm_out(gh, b_hh, h, W.t()): the bias in every row, then C += h W^T
    for (int64_t i = 0; i < N; ++i) std::memcpy(gh_k + i * 3 * H, b_p, 3 * H * sizeof(float));
    gemm('t', 'n', 3 * H, N, H, w_p, H, h, H, gh_k, 3 * H);
    gru_pre_rz_any(Rows(gx_t, 3 * H), Rows(gh_k, 3 * H), Rows(rz_k, 2 * H), N, 2 * H);
    at::sigmoid_(rz_t[k]);
    gru_pre_n_any(Rows(gx_t, 3 * H), Rows(gh_k, 3 * H), Rows(rz_k, 2 * H), Rows(n_k, H), N, H);
    at::tanh_(n_t[k]);
    lerp_masked_any(Rows(n_k, H), Rows(h, H), Rows(rz_k + H, 2 * H),
                    keep_p ? keep_p + t * N : nullptr, Rows(h, H), Rows(ys_p + t * N * H, H), N, H);
  }
  return raw_outputs(ys, save, {rz, n, gh.narrow(2, 2 * H, H)});
}

vector<Tensor> gru_backward_raw(const Opt& d_ys, const Tensor& d_final, const Tensor& ys,
                                const Tensor& h0, const vector<Tensor>& saved, const Tensor& w,
                                const Opt& keep) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t L = ys.size(0), N = ys.size(1), H = ys.size(2), NH = N * H;
  Tensor d_gx = at::empty({L, N, 3 * H}, ys.options()), d_rec = at::empty({L, N, H}, ys.options());
  Tensor dh = grad_buffer(d_final), next = at::empty({N, H}, ys.options());
  const RawBack rb(d_ys, keep, N, H);
  const float *ys_p = ys.data_ptr<float>(), *rz_p = saved[0].data_ptr<float>(),
              *n_p = saved[1].data_ptr<float>(), *ghn_p = saved[2].data_ptr<float>(),
              *w_p = w.data_ptr<float>();
  float *dgx_p = d_gx.data_ptr<float>(), *drec_p = d_rec.data_ptr<float>();
  for (int64_t t = L - 1; t >= 0; --t) {
    float *g = dh.data_ptr<float>(), *out = next.data_ptr<float>();
    const bool* keep_t = rb.step(t, g);
    const float* h = t > 0 ? ys_p + (t - 1) * NH : h0.data_ptr<float>();
    float *dgx_t = dgx_p + t * N * 3 * H, *drec_t = drec_p + t * NH;
    gru_back_any(Rows(g, H), keep_t, rb.zero.data(), Rows(h, H), Rows(rz_p + t * N * 2 * H, 2 * H),
                 Rows(n_p + t * NH, H), Rows(ghn_p + t * N * 3 * H, 3 * H), Rows(dgx_t, 3 * H),
                 Rows(out, H), Rows(drec_t, H), N, H);
    // at::addmm(dh_z, d_rz, W_rz).addmm_(d_rec, W_n), dh_z already in `out`
    gemm('n', 'n', H, N, 2 * H, w_p, H, dgx_t, 3 * H, out, H);
    gemm('n', 'n', H, N, H, w_p + 2 * H * H, H, drec_t, H, out, H);
    rb.carry(out, g, keep_t);
    std::swap(dh, next);
  }
  return {d_gx, dh, d_rec};
}

vector<Tensor> gru_forward(const Tensor& gx, vector<Tensor> state, vector<Tensor> weights,
                           const Opt& keep, bool save) {
  const Inputs in(gx, state, weights, keep);
  return gru_forward_raw(in.gx, in.state[0], in.weights[0], in.weights[1], in.keep, save);
}

vector<Tensor> gru_backward(const Opt& d_ys, vector<Tensor> d_final, const Tensor& ys,
                            vector<Tensor> state0, vector<Tensor> saved, vector<Tensor> weights,
                            const Opt& keep) {
  return gru_backward_raw(d_ys, d_final[0], f32(ys, "ys"), f32(state0[0], "state0"), saved,
                          f32(weights[0], "weights"), keep);
}

// -- tanh RNN (src/cells/rnn.py) -----------------------------------------------------------
// Raw as the GRU's: h_new = tanh(addmm(gx_t, h, W^T)), its product by sgemm_.
vector<Tensor> rnn_forward_raw(const Tensor& gx, const Tensor& h0, const Tensor& w,
                               const Opt& keep, bool save) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t L = gx.size(0), N = h0.size(0), H = h0.size(1), NH = N * H;
  Tensor ys = at::empty({L, N, H}, h0.options());
  Tensor pre = at::empty({save ? L : 1, N, H}, h0.options());  // aux: h_new (the tanh's output)
  Slide pre_t(pre);
  const float *gx_p = gx.data_ptr<float>(), *w_p = w.data_ptr<float>();
  const bool* keep_p = keep ? keep->data_ptr<bool>() : nullptr;
  float *ys_p = ys.data_ptr<float>(), *pre_p = pre.data_ptr<float>();
  for (int64_t t = 0; t < L; ++t) {
    const int64_t k = save ? t : 0;
    const float* h = t > 0 ? ys_p + (t - 1) * NH : h0.data_ptr<float>();
    float* a = pre_p + k * NH;
    std::memcpy(a, gx_p + t * gx.stride(0), NH * sizeof(float));  // at::addmm(gx_t, h, W^T)
    gemm('t', 'n', H, N, H, w_p, H, h, H, a, H);
    at::tanh_(pre_t[k]);
    for (int64_t i = 0; i < N; ++i)  // h' (rows past their length: h)
      std::memcpy(ys_p + t * NH + i * H, keep_p && !keep_p[t * N + i] ? h + i * H : a + i * H,
                  H * sizeof(float));
  }
  return raw_outputs(ys, save, {pre});
}

// d_pre = dh * (1 - h_new^2), written into d_gx; rows past their length take zeros (`zero`).
WARMUP_INLINE void rnn_back(Rows dh, const bool* keep, const float* zero, Rows hn, Rows d_pre,
                            int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const float* __restrict__ g = !keep || keep[i] ? &dh(i, 0) : zero, * __restrict__ y = &hn(i, 0);
    float* __restrict__ d = &d_pre(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) d[j] = g[j] * madd(-y[j], y[j], 1.0f);
  }
}
WARMUP_DISPATCH(rnn_back, (Rows dh, const bool* keep, const float* zero, Rows hn, Rows d_pre,
                           int64_t N, int64_t H),
                (dh, keep, zero, hn, d_pre, N, H))

vector<Tensor> rnn_backward_raw(const Opt& d_ys, const Tensor& d_final, const Tensor& h_new,
                                const Tensor& w, const Opt& keep) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t L = h_new.size(0), N = h_new.size(1), H = h_new.size(2), NH = N * H;
  Tensor d_gx = at::empty({L, N, H}, h_new.options());
  Tensor dh = grad_buffer(d_final), next = at::empty({N, H}, h_new.options());
  const RawBack rb(d_ys, keep, N, H);
  const float *hn_p = h_new.data_ptr<float>(), *w_p = w.data_ptr<float>();
  float* dgx_p = d_gx.data_ptr<float>();
  for (int64_t t = L - 1; t >= 0; --t) {
    float *g = dh.data_ptr<float>(), *out = next.data_ptr<float>();
    const bool* keep_t = rb.step(t, g);
    float* d_pre = dgx_p + t * NH;
    rnn_back_any(Rows(g, H), keep_t, rb.zero.data(), Rows(hn_p + t * NH, H), Rows(d_pre, H), N, H);
    gemm('n', 'n', H, N, H, w_p, H, d_pre, H, out, H, 0.0f);  // at::mm(d_pre, W)
    rb.carry(out, g, keep_t);
    std::swap(dh, next);
  }
  return {d_gx, dh};
}

vector<Tensor> rnn_forward(const Tensor& gx, vector<Tensor> state, vector<Tensor> weights,
                           const Opt& keep, bool save) {
  const Inputs in(gx, state, weights, keep);
  return rnn_forward_raw(in.gx, in.state[0], in.weights[0], in.keep, save);
}

vector<Tensor> rnn_backward(const Opt& d_ys, vector<Tensor> d_final, const Tensor& ys,
                            vector<Tensor> state0, vector<Tensor> saved, vector<Tensor> weights,
                            const Opt& keep) {
  return rnn_backward_raw(d_ys, d_final[0], saved[0], f32(weights[0], "weights"), keep);
}

// -- LSTM (src/cells/lstm.py; its loop, used with `lengths`) ---------------------------------
// As the GRU's (the LSTM's loop runs with lengths only: without, the cell runs torch.lstm):
// the product by sgemm_ into a copy of gx_t; the gates' sigmoid and tanh and tanh(c') ATen
// calls on views of the step's buffers; the rest one pass per step, the mask a row copy.

// c' = addcmul(f * c, i, g), the pre-mask cell state.
WARMUP_INLINE void lstm_cell(Rows if_, Rows g, Rows c, Rows out, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const float* __restrict__ in = &if_(i, 0), * __restrict__ f = &if_(i, H), * __restrict__ gg = &g(i, 0),
                * __restrict__ cc = &c(i, 0);
    float* __restrict__ o = &out(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) o[j] = madd(in[j], gg[j], f[j] * cc[j]);
  }
}

// h' = o * tanh(c'), then the mask: rows past their length keep h and c.
WARMUP_INLINE void lstm_out(Rows o, Rows tc, Rows c_new, Rows h, Rows c, const bool* keep,
                            Rows h_out, Rows c_out, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    if (keep && !keep[i]) {
      std::memcpy(&h_out(i, 0), &h(i, 0), H * sizeof(float));
      std::memcpy(&c_out(i, 0), &c(i, 0), H * sizeof(float));
      continue;
    }
    const float* __restrict__ oo = &o(i, 0), * __restrict__ t = &tc(i, 0);
    float* __restrict__ ho = &h_out(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) ho[j] = oo[j] * t[j];
    if (&c_out(i, 0) != &c_new(i, 0)) std::memcpy(&c_out(i, 0), &c_new(i, 0), H * sizeof(float));
  }
}

// One step back: from (dh, dc) after the mask (rows past their length take zeros, `zero`),
// the gate gradients (i, f, g, o) into d_g and the c part of d_prev (add_carried follows).
WARMUP_INLINE void lstm_back(Rows dh, Rows dc, const bool* keep, const float* zero, Rows c,
                             Rows if_, Rows g, Rows o, Rows tc, Rows d_g, Rows dc_out, int64_t N,
                             int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const bool k = !keep || keep[i];
    const float* __restrict__ gh = k ? &dh(i, 0) : zero, * __restrict__ gc = k ? &dc(i, 0) : zero;
    const float* __restrict__ cc = &c(i, 0), * __restrict__ in = &if_(i, 0), * __restrict__ f = &if_(i, H),
                * __restrict__ gg = &g(i, 0), * __restrict__ oo = &o(i, 0), * __restrict__ t = &tc(i, 0);
    float* __restrict__ di = &d_g(i, 0), * __restrict__ df = &d_g(i, H), * __restrict__ dg = &d_g(i, 2 * H),
          * __restrict__ d_o = &d_g(i, 3 * H), * __restrict__ dco = &dc_out(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      const float d_c = madd(gh[j] * oo[j], madd(-t[j], t[j], 1.0f), gc[j]);
      di[j] = (d_c * gg[j]) * madd(-in[j], in[j], in[j]);
      df[j] = (d_c * cc[j]) * madd(-f[j], f[j], f[j]);
      dg[j] = (d_c * in[j]) * madd(-gg[j], gg[j], 1.0f);
      d_o[j] = (gh[j] * t[j]) * madd(-oo[j], oo[j], oo[j]);
      dco[j] = d_c * f[j];
    }
  }
}
WARMUP_DISPATCH(lstm_cell, (Rows if_, Rows g, Rows c, Rows out, int64_t N, int64_t H),
                (if_, g, c, out, N, H))
WARMUP_DISPATCH(lstm_out, (Rows o, Rows tc, Rows c_new, Rows h, Rows c, const bool* keep,
                           Rows h_out, Rows c_out, int64_t N, int64_t H),
                (o, tc, c_new, h, c, keep, h_out, c_out, N, H))
WARMUP_DISPATCH(lstm_back, (Rows dh, Rows dc, const bool* keep, const float* zero, Rows c,
                            Rows if_, Rows g, Rows o, Rows tc, Rows d_g, Rows dc_out, int64_t N,
                            int64_t H),
                (dh, dc, keep, zero, c, if_, g, o, tc, d_g, dc_out, N, H))

vector<Tensor> lstm_forward_raw(const Tensor& gx, const Tensor& h0, const Tensor& c0,
                                const Tensor& w, const Opt& keep, bool save) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t L = gx.size(0), N = h0.size(0), H = h0.size(1), NH = N * H, S = save ? L : 1;
  const auto opt = h0.options();
  Tensor ys = at::empty({L, N, H}, opt), pre = at::empty({N, 4 * H}, opt);
  Tensor cs = at::empty({save ? L : 2, N, H}, opt), c_new = at::empty({N, H}, opt);
  Tensor if_ = at::empty({S, N, 2 * H}, opt), g = at::empty({S, N, H}, opt),
         o = at::empty({S, N, H}, opt), tc = at::empty({S, N, H}, opt);
  // views for ATen's sigmoid and tanh of the (N, 4H) pre-activations
  auto pre_ = pre.split_with_sizes({2 * H, H, H}, 1);
  Slide if_t(if_), g_t(g), o_t(o), tc_t(tc), cs_t(cs);
  const float *gx_p = gx.data_ptr<float>(), *w_p = w.data_ptr<float>();
  const bool* keep_p = keep ? keep->data_ptr<bool>() : nullptr;
  float *ys_p = ys.data_ptr<float>(), *pre_p = pre.data_ptr<float>(), *cs_p = cs.data_ptr<float>(),
        *cn_p = c_new.data_ptr<float>();
  for (int64_t t = 0; t < L; ++t) {
    const int64_t k = save ? t : 0;
    const float* h = t > 0 ? ys_p + (t - 1) * NH : h0.data_ptr<float>();
    const float* c = t > 0 ? cs_p + (save ? t - 1 : (t - 1) % 2) * NH : c0.data_ptr<float>();
    float* c_out = cs_p + (save ? t : t % 2) * NH;
    std::memcpy(pre_p, gx_p + t * gx.stride(0), N * 4 * H * sizeof(float));  // at::addmm(gx_t, h, W^T)
    gemm('t', 'n', 4 * H, N, H, w_p, H, h, H, pre_p, 4 * H);
    at::sigmoid_out(if_t[k], pre_[0]);
    at::tanh_out(g_t[k], pre_[1]);
    at::sigmoid_out(o_t[k], pre_[2]);
    // without a mask c' is the state itself: written into its buffer, read by the tanh there
    const bool direct = keep_p == nullptr;
    Tensor& cn = direct ? cs_t[save ? t : t % 2] : c_new;
    float* cn_p_t = direct ? c_out : cn_p;
    const float* if_k = if_t[k].data_ptr<float>();
    lstm_cell_any(Rows(if_k, 2 * H), Rows(g_t[k].data_ptr<float>(), H), Rows(c, H),
                  Rows(cn_p_t, H), N, H);
    at::tanh_out(tc_t[k], cn);
    lstm_out_any(Rows(o_t[k].data_ptr<float>(), H), Rows(tc_t[k].data_ptr<float>(), H),
                 Rows(cn_p_t, H), Rows(h, H), Rows(c, H), keep_p ? keep_p + t * N : nullptr,
                 Rows(ys_p + t * NH, H), Rows(c_out, H), N, H);
  }
  vector<Tensor> out{ys, ys.select(0, L - 1), cs.select(0, save ? L - 1 : (L - 1) % 2)};
  if (save) {
    out.push_back(cs);
    for (const Tensor* s : {&if_, &g, &o, &tc}) out.push_back(*s);
  }
  return out;
}

vector<Tensor> lstm_backward_raw(const Opt& d_ys_, const vector<Tensor>& d_final,
                                 const Tensor& ys, const vector<Tensor>& state0,
                                 const vector<Tensor>& saved, const Tensor& w, const Opt& keep) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t L = ys.size(0), N = ys.size(1), H = ys.size(2), NH = N * H;
  const auto opt = ys.options();
  Tensor d_gx = at::empty({L, N, 4 * H}, opt);
  Tensor dh = grad_buffer(d_final[0]),
         dc = grad_buffer(d_final[1]);
  Tensor dh_next = at::empty({N, H}, opt), dc_next = at::empty({N, H}, opt);
  const RawBack rb(d_ys_, keep, N, H);
  const float *cs_p = saved[0].data_ptr<float>(), *if_p = saved[1].data_ptr<float>(),
              *g_p = saved[2].data_ptr<float>(), *o_p = saved[3].data_ptr<float>(),
              *tc_p = saved[4].data_ptr<float>(), *w_p = w.data_ptr<float>();
  float* dgx_p = d_gx.data_ptr<float>();
  for (int64_t t = L - 1; t >= 0; --t) {
    float *gh = dh.data_ptr<float>(), *gc = dc.data_ptr<float>();
    const bool* keep_t = rb.step(t, gh);
    const float* c = t > 0 ? cs_p + (t - 1) * NH : state0[1].data_ptr<float>();
    float* d_g = dgx_p + t * N * 4 * H;
    lstm_back_any(Rows(gh, H), Rows(gc, H), keep_t, rb.zero.data(), Rows(c, H),
                  Rows(if_p + t * N * 2 * H, 2 * H), Rows(g_p + t * NH, H), Rows(o_p + t * NH, H),
                  Rows(tc_p + t * NH, H), Rows(d_g, 4 * H), Rows(dc_next.data_ptr<float>(), H),
                  N, H);
    float* hn = dh_next.data_ptr<float>();
    gemm('n', 'n', H, N, 4 * H, w_p, H, d_g, 4 * H, hn, H, 0.0f);  // at::matmul(d_gates, W)
    rb.carry(hn, gh, keep_t);
    rb.carry(dc_next.data_ptr<float>(), gc, keep_t);
    std::swap(dh, dh_next);
    std::swap(dc, dc_next);
  }
  return {d_gx, dh, dc};
}

vector<Tensor> lstm_forward(const Tensor& gx, vector<Tensor> state, vector<Tensor> weights,
                            const Opt& keep, bool save) {
  const Inputs in(gx, state, weights, keep);
  return lstm_forward_raw(in.gx, in.state[0], in.state[1], in.weights[0], in.keep, save);
}

vector<Tensor> lstm_backward(const Opt& d_ys, vector<Tensor> d_final, const Tensor& ys,
                             vector<Tensor> state0, vector<Tensor> saved, vector<Tensor> weights,
                             const Opt& keep) {
  return lstm_backward_raw(d_ys, d_final, f32(ys, "ys"), f32(state0, "state0"), saved,
                           f32(weights[0], "weights"), keep);
}

// -- BRC and nBRC (src/cells/brc.py, nbrc.py) -----------------------------------------------
// Raw as the GRU's: the BRC's recurrence is elementwise (no product at all), the nBRC's gates
// take one product, by sgemm_ into a copy of gx_ca. sigmoid and tanh are ATen calls on views
// of the step's buffers.

// a = 1 + tanh(.), already in `a`; h~ before its tanh: addcmul(gx_h, a, h).
WARMUP_INLINE void bistable_pre_h(Rows gx, Rows a, Rows h, Rows pre, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const float* __restrict__ g = &gx(i, 2 * H), * __restrict__ hh = &h(i, 0);
    float* __restrict__ aa = &a(i, 0), * __restrict__ o = &pre(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      aa[j] = aa[j] + 1.0f;
      o[j] = madd(aa[j], hh[j], g[j]);
    }
  }
}

// BRC before its sigmoid and tanh: addcmul(gx_c, w_c, h), addcmul(gx_a, w_a, h).
WARMUP_INLINE void brc_pre(Rows gx, const float* __restrict__ w_c, const float* __restrict__ w_a,
                           Rows h, Rows c, Rows a, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const float* __restrict__ gc = &gx(i, 0), * __restrict__ ga = &gx(i, H), * __restrict__ hh = &h(i, 0);
    float* __restrict__ cc = &c(i, 0), * __restrict__ aa = &a(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      cc[j] = madd(w_c[j], hh[j], gc[j]);
      aa[j] = madd(w_a[j], hh[j], ga[j]);
    }
  }
}

// One step back (bistable_backward in brc.py): the pre-activation gradients (c, a, h~) into
// d_g, and the part of d_prev that does not pass through the gates' recurrent weights,
// dh c + d_h~ a, plus (BRC, w_c and w_a given) its diagonal recurrent terms. Rows past their
// length take zeros (`zero`; add_carried follows).
WARMUP_INLINE void bistable_back(Rows dh, const bool* keep, const float* zero, Rows h, Rows c,
                                 Rows a, Rows ht, const float* w_c, const float* w_a, Rows d_g,
                                 Rows d_prev, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const bool k = !keep || keep[i];
    const float* __restrict__ g = k ? &dh(i, 0) : zero;
    const float* __restrict__ hh = &h(i, 0), * __restrict__ cc = &c(i, 0), * __restrict__ aa = &a(i, 0),
                * __restrict__ t = &ht(i, 0);
    float* __restrict__ dc = &d_g(i, 0), * __restrict__ da = &d_g(i, H), * __restrict__ dt = &d_g(i, 2 * H),
          * __restrict__ dp = &d_prev(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      const float dh_c = g[j] * cc[j];
      const float d_t = (g[j] - dh_c) * madd(-t[j], t[j], 1.0f);
      dt[j] = d_t;
      da[j] = (d_t * hh[j]) * madd(-aa[j], aa[j], 2.0f * aa[j]);
      dc[j] = (g[j] * (hh[j] - t[j])) * madd(-cc[j], cc[j], cc[j]);
      dp[j] = madd(d_t, aa[j], dh_c);
    }
    if (w_c) {  // BRC: .addcmul_(d_pa, w_a).addcmul_(d_pc, w_c)
#pragma GCC ivdep
      for (int64_t j = 0; j < H; ++j) dp[j] = madd(dc[j], w_c[j], madd(da[j], w_a[j], dp[j]));
    }
  }
}
WARMUP_DISPATCH(bistable_pre_h, (Rows gx, Rows a, Rows h, Rows pre, int64_t N, int64_t H),
                (gx, a, h, pre, N, H))
WARMUP_DISPATCH(brc_pre, (Rows gx, const float* w_c, const float* w_a, Rows h, Rows c, Rows a,
                          int64_t N, int64_t H),
                (gx, w_c, w_a, h, c, a, N, H))
WARMUP_DISPATCH(bistable_back, (Rows dh, const bool* keep, const float* zero, Rows h, Rows c,
                                Rows a, Rows ht, const float* w_c, const float* w_a, Rows d_g,
                                Rows d_prev, int64_t N, int64_t H),
                (dh, keep, zero, h, c, a, ht, w_c, w_a, d_g, d_prev, N, H))

// The forward loop of either cell; `w` the nBRC's (2H, H) matrix, or the BRC's w_c and w_a.
vector<Tensor> bistable_forward_raw(const Tensor& gx, const Tensor& h0, const Tensor* w,
                                    const Tensor* w_c, const Tensor* w_a, const Opt& keep,
                                    bool save) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t L = gx.size(0), N = h0.size(0), H = h0.size(1), NH = N * H, S = save ? L : 1;
  const auto opt = h0.options();
  Tensor ys = at::empty({L, N, H}, opt), pre = at::empty({N, 2 * H}, opt);
  Tensor c = at::empty({S, N, H}, opt), a = at::empty({S, N, H}, opt), ht = at::empty({S, N, H}, opt);
  Slide c_t(c), a_t(a), ht_t(ht);
  auto pre_ = pre.split(H, 1);  // views of the nBRC's pre-activations of c and a
  const float* gx_p = gx.data_ptr<float>();
  const bool* keep_p = keep ? keep->data_ptr<bool>() : nullptr;
  float *ys_p = ys.data_ptr<float>(), *pre_p = pre.data_ptr<float>();
  for (int64_t t = 0; t < L; ++t) {
    const int64_t k = save ? t : 0;
    const float* h = t > 0 ? ys_p + (t - 1) * NH : h0.data_ptr<float>();
    const float* gx_t = gx_p + t * gx.stride(0);
    float *c_k = c.data_ptr<float>() + k * NH, *a_k = a.data_ptr<float>() + k * NH,
          *ht_k = ht.data_ptr<float>() + k * NH;
    if (w) {  // at::addmm(gx_ca, h, W^T), then sigmoid and tanh of its two halves
      for (int64_t i = 0; i < N; ++i)
        std::memcpy(pre_p + i * 2 * H, gx_t + i * 3 * H, 2 * H * sizeof(float));
      gemm('t', 'n', 2 * H, N, H, w->data_ptr<float>(), H, h, H, pre_p, 2 * H);
      at::sigmoid_out(c_t[k], pre_[0]);
      at::tanh_out(a_t[k], pre_[1]);
    } else {
      brc_pre_any(Rows(gx_t, 3 * H), w_c->data_ptr<float>(), w_a->data_ptr<float>(), Rows(h, H),
                  Rows(c_k, H), Rows(a_k, H), N, H);
      at::sigmoid_(c_t[k]);
      at::tanh_(a_t[k]);
    }
    bistable_pre_h_any(Rows(gx_t, 3 * H), Rows(a_k, H), Rows(h, H), Rows(ht_k, H), N, H);
    at::tanh_(ht_t[k]);
    lerp_masked_any(Rows(ht_k, H), Rows(h, H), Rows(c_k, H), keep_p ? keep_p + t * N : nullptr,
                    Rows(h, H), Rows(ys_p + t * NH, H), N, H);
  }
  return raw_outputs(ys, save, {c, a, ht});
}

vector<Tensor> bistable_backward_raw(const Opt& d_ys_, const Tensor& d_final, const Tensor& ys,
                                     const Tensor& h0, const vector<Tensor>& saved,
                                     const Tensor* w, const Tensor* w_c, const Tensor* w_a,
                                     const Opt& keep) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t L = ys.size(0), N = ys.size(1), H = ys.size(2), NH = N * H;
  const auto opt = ys.options();
  Tensor d_gx = at::empty({L, N, 3 * H}, opt);
  Tensor dh = grad_buffer(d_final), next = at::empty({N, H}, opt);
  const RawBack rb(d_ys_, keep, N, H);
  const float *ys_p = ys.data_ptr<float>(), *c_p = saved[0].data_ptr<float>(),
              *a_p = saved[1].data_ptr<float>(), *ht_p = saved[2].data_ptr<float>();
  const float *wc_p = w_c ? w_c->data_ptr<float>() : nullptr,
              *wa_p = w_a ? w_a->data_ptr<float>() : nullptr;
  float* dgx_p = d_gx.data_ptr<float>();
  for (int64_t t = L - 1; t >= 0; --t) {
    float *g = dh.data_ptr<float>(), *out = next.data_ptr<float>();
    const bool* keep_t = rb.step(t, g);
    const float* h = t > 0 ? ys_p + (t - 1) * NH : h0.data_ptr<float>();
    float* d_g = dgx_p + t * N * 3 * H;
    bistable_back_any(Rows(g, H), keep_t, rb.zero.data(), Rows(h, H), Rows(c_p + t * NH, H),
                      Rows(a_p + t * NH, H), Rows(ht_p + t * NH, H), wc_p, wa_p,
                      Rows(d_g, 3 * H), Rows(out, H), N, H);
    if (w)  // at::addmm(d_h, d_gx[:, :2H], W)
      gemm('n', 'n', H, N, 2 * H, w->data_ptr<float>(), H, d_g, 3 * H, out, H);
    rb.carry(out, g, keep_t);
    std::swap(dh, next);
  }
  return {d_gx, dh};
}

vector<Tensor> brc_forward(const Tensor& gx, vector<Tensor> state, vector<Tensor> weights,
                           const Opt& keep, bool save) {
  const Inputs in(gx, state, weights, keep);
  return bistable_forward_raw(in.gx, in.state[0], nullptr, &in.weights[0], &in.weights[1],
                              in.keep, save);
}

vector<Tensor> nbrc_forward(const Tensor& gx, vector<Tensor> state, vector<Tensor> weights,
                            const Opt& keep, bool save) {
  const Inputs in(gx, state, weights, keep);
  return bistable_forward_raw(in.gx, in.state[0], &in.weights[0], nullptr, nullptr, in.keep,
                              save);
}

vector<Tensor> brc_backward(const Opt& d_ys, vector<Tensor> d_final, const Tensor& ys,
                            vector<Tensor> state0, vector<Tensor> saved, vector<Tensor> weights,
                            const Opt& keep) {
  const vector<Tensor> w = f32(weights, "weights");
  return bistable_backward_raw(d_ys, d_final[0], f32(ys, "ys"), f32(state0[0], "state0"), saved,
                               nullptr, &w[0], &w[1], keep);
}

vector<Tensor> nbrc_backward(const Opt& d_ys, vector<Tensor> d_final, const Tensor& ys,
                             vector<Tensor> state0, vector<Tensor> saved, vector<Tensor> weights,
                             const Opt& keep) {
  const Tensor w = f32(weights[0], "weights");
  return bistable_backward_raw(d_ys, d_final[0], f32(ys, "ys"), f32(state0[0], "state0"), saved,
                               &w, nullptr, nullptr, keep);
}

// -- MGU (src/cells/mgu.py) ----------------------------------------------------------------
// As the GRU's: two products a step each way, by sgemm_; sigmoid and tanh are ATen calls.

// fh = f * h.
WARMUP_INLINE void mgu_fh(Rows f, Rows h, Rows fh, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const float* __restrict__ a = &f(i, 0), * __restrict__ b = &h(i, 0);
    float* __restrict__ o = &fh(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) o[j] = a[j] * b[j];
  }
}

// Backwards, before the product by U_h: d_h~ = (dh f) (1 - h~^2), rows past their length
// taking zeros.
WARMUP_INLINE void mgu_back_h(Rows dh, const bool* keep, const float* zero, Rows f, Rows ht,
                              Rows d_g, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const float* __restrict__ g = !keep || keep[i] ? &dh(i, 0) : zero;
    const float* __restrict__ ff = &f(i, 0), * __restrict__ t = &ht(i, 0);
    float* __restrict__ d = &d_g(i, H);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) d[j] = (g[j] * ff[j]) * madd(-t[j], t[j], 1.0f);
  }
}

// After it, given d_fh = d_h~ U_h: d_f = addcmul(dh (h~ - h), d_fh, h) f (1 - f), and the part
// of d_prev before the product by U_f, addcmul(dh - dh f, d_fh, f).
WARMUP_INLINE void mgu_back_f(Rows dh, const bool* keep, const float* zero, Rows h, Rows f,
                              Rows ht, Rows d_fh, Rows d_g, Rows d_prev, int64_t N, int64_t H) {
  for (int64_t i = 0; i < N; ++i) {
    const bool k = !keep || keep[i];
    const float* __restrict__ g = k ? &dh(i, 0) : zero;
    const float* __restrict__ hh = &h(i, 0), * __restrict__ ff = &f(i, 0), * __restrict__ t = &ht(i, 0),
                * __restrict__ dfh = &d_fh(i, 0);
    float* __restrict__ df = &d_g(i, 0), * __restrict__ dp = &d_prev(i, 0);
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      df[j] = madd(dfh[j], hh[j], g[j] * (t[j] - hh[j])) * madd(-ff[j], ff[j], ff[j]);
      dp[j] = madd(dfh[j], ff[j], g[j] - g[j] * ff[j]);
    }
  }
}
WARMUP_DISPATCH(mgu_fh, (Rows f, Rows h, Rows fh, int64_t N, int64_t H), (f, h, fh, N, H))
WARMUP_DISPATCH(mgu_back_h, (Rows dh, const bool* keep, const float* zero, Rows f, Rows ht,
                             Rows d_g, int64_t N, int64_t H),
                (dh, keep, zero, f, ht, d_g, N, H))
WARMUP_DISPATCH(mgu_back_f, (Rows dh, const bool* keep, const float* zero, Rows h, Rows f,
                             Rows ht, Rows d_fh, Rows d_g, Rows d_prev, int64_t N, int64_t H),
                (dh, keep, zero, h, f, ht, d_fh, d_g, d_prev, N, H))

vector<Tensor> mgu_forward_raw(const Tensor& gx, const Tensor& h0, const Tensor& w,
                               const Opt& keep, bool save) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t L = gx.size(0), N = h0.size(0), H = h0.size(1), NH = N * H, S = save ? L : 1;
  const auto opt = h0.options();
  Tensor ys = at::empty({L, N, H}, opt);
  Tensor f = at::empty({S, N, H}, opt), fh = at::empty({S, N, H}, opt), ht = at::empty({S, N, H}, opt);
  Slide f_t(f), ht_t(ht);
  const float *gx_p = gx.data_ptr<float>(), *uf_p = w.data_ptr<float>(), *uh_p = uf_p + H * H;
  const bool* keep_p = keep ? keep->data_ptr<bool>() : nullptr;
  float* ys_p = ys.data_ptr<float>();
  for (int64_t t = 0; t < L; ++t) {
    const int64_t k = save ? t : 0;
    const float* h = t > 0 ? ys_p + (t - 1) * NH : h0.data_ptr<float>();
    const float* gx_t = gx_p + t * gx.stride(0);
    float *f_k = f.data_ptr<float>() + k * NH, *fh_k = fh.data_ptr<float>() + k * NH,
          *ht_k = ht.data_ptr<float>() + k * NH;
    for (int64_t i = 0; i < N; ++i) {  // at::addmm(gx_f, h, U_f^T), at::addmm(gx_h, fh, U_h^T)
      std::memcpy(f_k + i * H, gx_t + i * 2 * H, H * sizeof(float));
      std::memcpy(ht_k + i * H, gx_t + i * 2 * H + H, H * sizeof(float));
    }
    gemm('t', 'n', H, N, H, uf_p, H, h, H, f_k, H);
    at::sigmoid_(f_t[k]);
    mgu_fh_any(Rows(f_k, H), Rows(h, H), Rows(fh_k, H), N, H);
    gemm('t', 'n', H, N, H, uh_p, H, fh_k, H, ht_k, H);
    at::tanh_(ht_t[k]);
    lerp_masked_any(Rows(h, H), Rows(ht_k, H), Rows(f_k, H), keep_p ? keep_p + t * N : nullptr,
                    Rows(h, H), Rows(ys_p + t * NH, H), N, H);
  }
  return raw_outputs(ys, save, {f, fh, ht});
}

vector<Tensor> mgu_backward_raw(const Opt& d_ys_, const Tensor& d_final, const Tensor& ys,
                                const Tensor& h0, const vector<Tensor>& saved, const Tensor& w,
                                const Opt& keep) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t L = ys.size(0), N = ys.size(1), H = ys.size(2), NH = N * H;
  const auto opt = ys.options();
  Tensor d_gx = at::empty({L, N, 2 * H}, opt);
  Tensor dh = grad_buffer(d_final), next = at::empty({N, H}, opt),
         d_fh = at::empty({N, H}, opt);
  const RawBack rb(d_ys_, keep, N, H);
  const float *ys_p = ys.data_ptr<float>(), *f_p = saved[0].data_ptr<float>(),
              *ht_p = saved[2].data_ptr<float>(), *uf_p = w.data_ptr<float>(), *uh_p = uf_p + H * H;
  float *dgx_p = d_gx.data_ptr<float>(), *dfh_p = d_fh.data_ptr<float>();
  for (int64_t t = L - 1; t >= 0; --t) {
    float *g = dh.data_ptr<float>(), *out = next.data_ptr<float>();
    const bool* keep_t = rb.step(t, g);
    const float* h = t > 0 ? ys_p + (t - 1) * NH : h0.data_ptr<float>();
    const float *f = f_p + t * NH, *ht = ht_p + t * NH;
    float* d_g = dgx_p + t * N * 2 * H;
    mgu_back_h_any(Rows(g, H), keep_t, rb.zero.data(), Rows(f, H), Rows(ht, H), Rows(d_g, 2 * H),
                   N, H);
    gemm('n', 'n', H, N, H, uh_p, H, d_g + H, 2 * H, dfh_p, H, 0.0f);  // at::matmul(d_h~, U_h)
    mgu_back_f_any(Rows(g, H), keep_t, rb.zero.data(), Rows(h, H), Rows(f, H), Rows(ht, H),
                   Rows(dfh_p, H), Rows(d_g, 2 * H), Rows(out, H), N, H);
    gemm('n', 'n', H, N, H, uf_p, H, d_g, 2 * H, out, H);  // at::addmm(., d_f, U_f)
    rb.carry(out, g, keep_t);
    std::swap(dh, next);
  }
  return {d_gx, dh};
}

vector<Tensor> mgu_forward(const Tensor& gx, vector<Tensor> state, vector<Tensor> weights,
                           const Opt& keep, bool save) {
  const Inputs in(gx, state, weights, keep);
  return mgu_forward_raw(in.gx, in.state[0], in.weights[0], in.keep, save);
}

vector<Tensor> mgu_backward(const Opt& d_ys, vector<Tensor> d_final, const Tensor& ys,
                            vector<Tensor> state0, vector<Tensor> saved, vector<Tensor> weights,
                            const Opt& keep) {
  return mgu_backward_raw(d_ys, d_final[0], f32(ys, "ys"), f32(state0[0], "state0"), saved,
                          f32(weights[0], "weights"), keep);
}

}  // namespace

TORCH_LIBRARY(warmup_rnn, m) {
  m.def("gru_forward(Tensor gx, Tensor[] state, Tensor[] weights, Tensor? keep, bool save) -> Tensor[]");
  m.def("gru_backward(Tensor? d_ys, Tensor[] d_final, Tensor ys, Tensor[] state0, Tensor[] saved, Tensor[] weights, Tensor? keep) -> Tensor[]");
  m.def("mgu_forward(Tensor gx, Tensor[] state, Tensor[] weights, Tensor? keep, bool save) -> Tensor[]");
  m.def("mgu_backward(Tensor? d_ys, Tensor[] d_final, Tensor ys, Tensor[] state0, Tensor[] saved, Tensor[] weights, Tensor? keep) -> Tensor[]");
  m.def("rnn_forward(Tensor gx, Tensor[] state, Tensor[] weights, Tensor? keep, bool save) -> Tensor[]");
  m.def("rnn_backward(Tensor? d_ys, Tensor[] d_final, Tensor ys, Tensor[] state0, Tensor[] saved, Tensor[] weights, Tensor? keep) -> Tensor[]");
  m.def("lstm_forward(Tensor gx, Tensor[] state, Tensor[] weights, Tensor? keep, bool save) -> Tensor[]");
  m.def("lstm_backward(Tensor? d_ys, Tensor[] d_final, Tensor ys, Tensor[] state0, Tensor[] saved, Tensor[] weights, Tensor? keep) -> Tensor[]");
  m.def("brc_forward(Tensor gx, Tensor[] state, Tensor[] weights, Tensor? keep, bool save) -> Tensor[]");
  m.def("brc_backward(Tensor? d_ys, Tensor[] d_final, Tensor ys, Tensor[] state0, Tensor[] saved, Tensor[] weights, Tensor? keep) -> Tensor[]");
  m.def("nbrc_forward(Tensor gx, Tensor[] state, Tensor[] weights, Tensor? keep, bool save) -> Tensor[]");
  m.def("nbrc_backward(Tensor? d_ys, Tensor[] d_final, Tensor ys, Tensor[] state0, Tensor[] saved, Tensor[] weights, Tensor? keep) -> Tensor[]");
  // Whether the loops can run: this torch exports the BLAS routine they call (sgemm_).
  m.def("available() -> bool", []() { return sgemm_ != nullptr; });
}

TORCH_LIBRARY_IMPL(warmup_rnn, CompositeExplicitAutograd, m) {
  m.impl("gru_forward", &gru_forward);
  m.impl("gru_backward", &gru_backward);
  m.impl("mgu_forward", &mgu_forward);
  m.impl("mgu_backward", &mgu_backward);
  m.impl("rnn_forward", &rnn_forward);
  m.impl("rnn_backward", &rnn_backward);
  m.impl("lstm_forward", &lstm_forward);
  m.impl("lstm_backward", &lstm_backward);
  m.impl("brc_forward", &brc_forward);
  m.impl("brc_backward", &brc_backward);
  m.impl("nbrc_forward", &nbrc_forward);
  m.impl("nbrc_backward", &nbrc_backward);
}
