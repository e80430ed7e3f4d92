#include "sae/trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/error.h"
#include "sae/device.h"
#include "sae/safetensors.h"
#include "sae/tensor_io.h"

namespace s3::sae {
namespace {

constexpr const char* kCheckpointFormat = "s3attn-sae-checkpoint";
constexpr int kCheckpointVersion = 1;
const char* const kParamNames[] = {"W_enc", "b_enc", "W_dec", "b_dec"};

at::Tensor& param(SaeWeights& w, int i) {
  switch (i) {
    case 0:
      return w.W_enc;
    case 1:
      return w.b_enc;
    case 2:
      return w.W_dec;
    default:
      return w.b_dec;
  }
}
const at::Tensor& param(const SaeWeights& w, int i) {
  return param(const_cast<SaeWeights&>(w), i);
}

// Weiszfeld iterations for the geometric median of the rows of x [B, D] (float32), started at the
// mean. A fixed number of iterations keeps it free of host syncs.
at::Tensor geometric_median(const at::Tensor& x, int iterations = 64) {
  at::Tensor y = x.mean(0);
  for (int i = 0; i < iterations; ++i) {
    const at::Tensor w = (x - y).norm(2, {1}).clamp_min(1e-8).reciprocal();  // [B]
    y = (w.unsqueeze(1) * x).sum(0) / w.sum();
  }
  return y;
}

}  // namespace

LossAndGrad sae_loss_and_grad(const SaeWeights& p, const at::Tensor& x, const at::Tensor& dead,
                              int64_t k, int64_t k_aux, double aux_weight) {
  // Forward.
  const at::Tensor xc = x - p.b_dec;                           // [B, D]
  const at::Tensor pre = at::addmm(p.b_enc, xc, p.W_enc.t());  // [B, F]
  // Plain top-k: the encoder's tie rule matters for reproducible indexes, not for gradients
  // (float32 ties are rare, and either choice is a valid subgradient).
  auto [top_v, top_i] = pre.topk(k, 1, /*largest=*/true, /*sorted=*/false);
  top_v = top_v.clamp_min(0);
  const at::Tensor z = at::zeros_like(pre).scatter_(1, top_i, top_v);  // ids are distinct per row
  const at::Tensor x_hat = at::addmm(p.b_dec, z, p.W_dec);             // [B, D]
  const at::Tensor r = x_hat - x;
  const at::Tensor total = (x - x.mean(0)).square().sum().clamp_min(1e-30);  // S
  const at::Tensor fvu = r.square().sum() / total;

  // Backward of the reconstruction term (top-k selection fixed).
  const at::Tensor g_xhat = r * (2.0 / total);                 // [B, D]
  at::Tensor g_W_dec = at::mm(z.t(), g_xhat);                  // [F, D]
  at::Tensor g_pre = at::mm(g_xhat, p.W_dec.t()).mul_(z > 0);  // [B, F]

  // AuxK: the k_aux largest pre-activations among dead latents reconstruct the residual
  // e = x - x_hat (a constant here). Zero, with zero gradient, when no latent is dead.
  at::Tensor aux_loss = at::zeros({}, pre.options());
  if (k_aux > 0) {
    const at::Tensor neg_inf = at::full({}, -std::numeric_limits<float>::infinity(), pre.options());
    auto [aux_v, aux_i] = at::where(dead, pre, neg_inf).topk(k_aux, 1, true, false);
    const at::Tensor z_aux = at::zeros_like(pre).scatter_(1, aux_i, aux_v.clamp_min(0));
    const at::Tensor e_hat = at::mm(z_aux, p.W_dec);  // [B, D]
    const at::Tensor diff = e_hat + r;                // e_hat - e
    const at::Tensor any_dead = dead.any().to(at::kFloat);
    aux_loss = any_dead * diff.square().sum() / total;
    const at::Tensor g_ehat = diff * (any_dead * (2.0 * aux_weight) / total);
    g_W_dec.addmm_(z_aux.t(), g_ehat);
    g_pre.add_(at::mm(g_ehat, p.W_dec.t()).mul_(z_aux > 0));
  }
  const at::Tensor g_W_enc = at::mm(g_pre.t(), xc);  // [F, D]
  const at::Tensor g_b_enc = g_pre.sum(0);           // [F]
  // b_dec enters x_hat directly and the encoder through x - b_dec.
  const at::Tensor g_b_dec = g_xhat.sum(0) - at::mv(p.W_enc.t(), g_b_enc);  // [D]

  LossAndGrad out;
  out.loss = fvu + aux_weight * aux_loss;
  out.fvu = fvu;
  out.aux_loss = aux_loss;
  out.grad = {g_W_enc, g_b_enc, g_W_dec, g_b_dec};
  out.ids = at::where(top_v > 0, top_i, at::full({}, -1, top_i.options()));
  out.fired = (z > 0).any(0);
  return out;
}

struct Trainer::State {
  TrainerOptions opt;
  int64_t d_in = 0;
  c10::Device device{c10::kCPU};
  int64_t k_aux = 0;
  int64_t dead_after = 0;
  int64_t warmup = 0;

  bool initialized = false;
  double scale = 1.0;      // inputs are multiplied by this during training
  SaeWeights p;            // float32 on device, in the scaled space
  SaeWeights m, v;         // Adam moments
  at::Tensor since_fired;  // int64 [F]: vectors since each latent last fired
  int64_t step = 0;
  int64_t vectors = 0;

  // Stats: device scalars of the last step, host copies of the last sync.
  at::Tensor loss_d, fvu_d, aux_d, dead_d;
  StepStats last;
  std::chrono::steady_clock::time_point t_sync = std::chrono::steady_clock::now();
  int64_t vectors_at_sync = 0;

  double lr_at(int64_t s) const {  // s: 0-based index of the step
    double lr = opt.lr;
    if (warmup > 0 && s < warmup) lr *= static_cast<double>(s + 1) / static_cast<double>(warmup);
    const int64_t decay = static_cast<int64_t>(std::llround(opt.lr_decay_fraction * opt.steps));
    const int64_t decay_start = opt.steps - decay;
    if (decay > 0 && s >= decay_start) {
      lr *= std::max(0.0, static_cast<double>(opt.steps - s) / static_cast<double>(decay));
    }
    return lr;
  }

  void init(const at::Tensor& x_raw) {
    const int64_t f = opt.latents, d = d_in;
    // Directions drawn on the CPU from the seed so that every device starts identically.
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(opt.seed);
    at::Tensor w_dec = at::randn({f, d}, gen, at::TensorOptions().dtype(at::kFloat));
    w_dec = w_dec / w_dec.norm(2, {1}, true).clamp_min(1e-12);
    const at::Tensor b_dec_raw = opt.b_dec_init == "mean" ? x_raw.mean(0) : geometric_median(x_raw);
    if (opt.normalize_inputs) {
      const double ms = (x_raw - b_dec_raw).square().sum(1).mean().item<double>();
      scale = ms > 0 && std::isfinite(ms) ? std::sqrt(static_cast<double>(d) / ms) : 1.0;
    }
    const auto fo = at::TensorOptions().dtype(at::kFloat).device(device);
    p.W_dec = w_dec.to(device);
    p.W_enc = p.W_dec.clone();  // W_enc = W_dec^T in the x_hat = W_dec z convention
    p.b_enc = at::zeros({f}, fo);
    p.b_dec = (b_dec_raw * scale).to(device);
    init_state();
    initialized = true;
  }

  void init_state() {
    const auto fo = at::TensorOptions().dtype(at::kFloat).device(device);
    for (int i = 0; i < 4; ++i) {
      param(m, i) = at::zeros_like(param(p, i), fo);
      param(v, i) = at::zeros_like(param(p, i), fo);
    }
    since_fired = at::zeros({opt.latents}, fo.dtype(at::kLong));
    const auto z = at::zeros({}, fo);
    loss_d = z, fvu_d = z, aux_d = z, dead_d = z;
  }

  void sync_stats(StepStats& s) {
    const at::Tensor all = at::stack({loss_d, fvu_d, aux_d, dead_d}).to(at::kCPU);
    const float* a = all.data_ptr<float>();
    s.loss = a[0];
    s.fvu = a[1];
    s.aux_loss = a[2];
    s.dead_fraction = a[3];
    s.fresh = true;
    const auto now = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(now - t_sync).count();
    s.vectors_per_s = dt > 0 ? static_cast<double>(vectors - vectors_at_sync) / dt : 0.0;
    t_sync = now;
    vectors_at_sync = vectors;
    if (!std::isfinite(s.loss)) {
      throw Error("SAE training diverged at step " + std::to_string(step) +
                  " (loss is not finite): lower --lr or check the input vectors");
    }
  }
};

Trainer::Trainer(std::unique_ptr<State> s) : s_(std::move(s)) {}
Trainer::Trainer(Trainer&&) noexcept = default;
Trainer& Trainer::operator=(Trainer&&) noexcept = default;
Trainer::~Trainer() = default;

Trainer::Trainer(const TrainerOptions& options, int64_t d_in) : s_(std::make_unique<State>()) {
  options.validate();
  if (d_in < 1) throw Error("SAE trainer: d_in must be >= 1");
  s_->opt = options;
  s_->d_in = d_in;
  s_->device = resolve_device(options.device);
  s_->k_aux = options.resolved_k_aux(d_in);
  s_->dead_after = options.resolved_dead_after();
  s_->warmup = options.resolved_warmup_steps();
}

const TrainerOptions& Trainer::options() const {
  return s_->opt;
}
int64_t Trainer::d_in() const {
  return s_->d_in;
}
int64_t Trainer::steps_done() const {
  return s_->step;
}
int64_t Trainer::vectors_seen() const {
  return s_->vectors;
}

StepStats Trainer::step(const at::Tensor& batch) {
  State& s = *s_;
  if (batch.dim() != 2 || batch.size(1) != s.d_in) {
    std::ostringstream os;
    os << batch.sizes();
    throw Error("SAE trainer: batch must be [B, " + std::to_string(s.d_in) + "], is " + os.str());
  }
  if (batch.size(0) == 0) {
    throw Error("SAE trainer: empty training batch (the corpus produced no vectors)");
  }
  if (!at::isFloatingType(batch.scalar_type())) throw Error("SAE trainer: batch must be floating");
  const at::Tensor x_raw = batch.to(s.device, at::kFloat, /*non_blocking=*/true);
  if (!s.initialized) s.init(x_raw);
  const int64_t b = x_raw.size(0);
  const at::Tensor x = s.scale == 1.0 ? x_raw : x_raw * s.scale;

  // No latent can be dead before dead_after vectors have gone by: skip AuxK until then.
  const at::Tensor dead = s.since_fired > s.dead_after;
  const int64_t k_aux = s.vectors >= s.dead_after ? s.k_aux : 0;
  LossAndGrad lg = sae_loss_and_grad(s.p, x, dead, s.opt.k, k_aux, s.opt.aux_weight);

  // Keep decoder rows on the unit sphere: drop the gradient's component along each row.
  at::Tensor& gW = lg.grad.W_dec;
  gW.sub_((gW * s.p.W_dec).sum(1, true) * s.p.W_dec);

  // Adam.
  const double lr = s.lr_at(s.step);
  const int64_t t = s.step + 1;
  const double bc1 = 1.0 - std::pow(s.opt.beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(s.opt.beta2, static_cast<double>(t));
  for (int i = 0; i < 4; ++i) {
    at::Tensor& w = param(s.p, i);
    at::Tensor& m = param(s.m, i);
    at::Tensor& v = param(s.v, i);
    const at::Tensor& g = param(lg.grad, i);
    m.mul_(s.opt.beta1).add_(g, 1.0 - s.opt.beta1);
    v.mul_(s.opt.beta2).addcmul_(g, g, 1.0 - s.opt.beta2);
    const at::Tensor denom = (v / bc2).sqrt_().add_(s.opt.eps);
    w.addcdiv_(m, denom, -lr / bc1);
  }
  s.p.W_dec.div_(s.p.W_dec.norm(2, {1}, true).clamp_min(1e-12));

  // Dead-latent bookkeeping.
  s.since_fired.add_(b).masked_fill_(lg.fired, 0);
  s.loss_d = lg.loss;
  s.fvu_d = lg.fvu;
  s.aux_d = lg.aux_loss;
  s.dead_d = (s.since_fired > s.dead_after).to(at::kFloat).mean();

  ++s.step;
  s.vectors += b;
  StepStats out = s.last;
  out.step = s.step;
  out.vectors = s.vectors;
  out.lr = lr;
  out.fresh = false;
  if (s.step % s.opt.stats_every == 0 || s.step == s.opt.steps || s.step == 1) {
    s.sync_stats(out);
  }
  s.last = out;
  return out;
}

StepStats Trainer::final_stats() {
  StepStats out = s_->last;
  if (s_->initialized) s_->sync_stats(out);
  s_->last = out;
  return out;
}

SaeWeights Trainer::weights() const {
  const State& s = *s_;
  if (!s.initialized) {
    throw Error("SAE trainer: no training data was seen, so there are no weights (empty corpus?)");
  }
  // Training ran on x * scale; fold the scale into the biases (docs/sae.md, "Input scaling").
  const double inv = 1.0 / s.scale;
  auto cpu = [](const at::Tensor& t) { return t.detach().to(at::kCPU, at::kFloat).contiguous(); };
  return {cpu(s.p.W_enc), cpu(s.p.b_enc * inv), cpu(s.p.W_dec), cpu(s.p.b_dec * inv)};
}

void Trainer::save_checkpoint(const std::filesystem::path& file) const {
  const State& s = *s_;
  if (!s.initialized) throw Error("SAE trainer: nothing to checkpoint before the first step");
  SafetensorsWriter w;
  for (int i = 0; i < 4; ++i) {
    add_tensor(w, kParamNames[i], param(s.p, i));
    add_tensor(w, std::string("adam_m.") + kParamNames[i], param(s.m, i));
    add_tensor(w, std::string("adam_v.") + kParamNames[i], param(s.v, i));
  }
  add_tensor(w, "since_fired", s.since_fired);
  nlohmann::json opts = s.opt;
  w.set_metadata({{"format", kCheckpointFormat},
                  {"format_version", std::to_string(kCheckpointVersion)},
                  {"d_in", std::to_string(s.d_in)},
                  {"step", std::to_string(s.step)},
                  {"vectors", std::to_string(s.vectors)},
                  {"scale", nlohmann::json(s.scale).dump()},
                  {"options", opts.dump()}});
  w.write(file);
}

Trainer Trainer::resume(const std::filesystem::path& checkpoint, const TrainerOptions& options) {
  const std::string path = checkpoint.string();
  if (!std::filesystem::exists(checkpoint)) {
    throw Error(path + ": checkpoint does not exist (nothing to resume)");
  }
  const SafetensorsFile file = SafetensorsFile::open(checkpoint);
  const auto& meta = file.metadata();
  auto get = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    if (it == meta.end()) throw DataCorruption(path, std::string("checkpoint lacks '") + key + "'");
    return it->second;
  };
  if (get("format") != kCheckpointFormat) throw DataCorruption(path, "not an SAE checkpoint");
  if (std::stoi(get("format_version")) > kCheckpointVersion) {
    throw DataCorruption(path, "checkpoint format is newer than this s3attn: upgrade s3attn");
  }
  int64_t d_in = 0;
  auto st = std::make_unique<State>();
  try {
    d_in = std::stoll(get("d_in"));
    st->step = std::stoll(get("step"));
    st->vectors = std::stoll(get("vectors"));
    st->scale = nlohmann::json::parse(get("scale")).get<double>();
  } catch (const std::exception& e) {
    if (dynamic_cast<const DataCorruption*>(&e)) throw;
    throw DataCorruption(path, std::string("bad checkpoint metadata (") + e.what() + ")");
  }
  Trainer t(options, d_in);
  st->opt = t.s_->opt;
  st->d_in = d_in;
  st->device = t.s_->device;
  st->k_aux = t.s_->k_aux;
  st->dead_after = t.s_->dead_after;
  st->warmup = t.s_->warmup;
  for (int i = 0; i < 4; ++i) {
    param(st->p, i) = read_tensor(file, kParamNames[i]).to(st->device, at::kFloat);
    param(st->m, i) =
        read_tensor(file, std::string("adam_m.") + kParamNames[i]).to(st->device, at::kFloat);
    param(st->v, i) =
        read_tensor(file, std::string("adam_v.") + kParamNames[i]).to(st->device, at::kFloat);
  }
  try {
    st->p.check("checkpoint");
  } catch (const Error& e) {
    throw DataCorruption(path, e.what());
  }
  if (st->p.d_in() != d_in) throw DataCorruption(path, "tensor shapes disagree with d_in");
  if (st->p.d_latent() != options.latents) {
    throw Error(path + ": checkpoint has " + std::to_string(st->p.d_latent()) +
                " latents but --latents is " + std::to_string(options.latents) +
                ": resume with the same --latents or start a new run");
  }
  st->since_fired = read_tensor(file, "since_fired").to(st->device, at::kLong);
  if (st->since_fired.dim() != 1 || st->since_fired.size(0) != options.latents) {
    throw DataCorruption(path, "since_fired has the wrong shape");
  }
  const auto z = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(st->device));
  st->loss_d = z, st->fvu_d = z, st->aux_d = z, st->dead_d = z;
  st->initialized = true;
  st->vectors_at_sync = st->vectors;
  return Trainer(std::move(st));
}

}  // namespace s3::sae
