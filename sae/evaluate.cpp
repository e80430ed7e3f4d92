#include "sae/evaluate.h"

#include <ATen/ATen.h>

#include <limits>

#include "core/base/error.h"

namespace s3::sae {

Evaluator::Evaluator(const Encoder& encoder) : enc_(encoder) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble).device(encoder.device());
  sum_x_ = at::zeros({encoder.d_in()}, f64);
  sum_xx_ = at::zeros({}, f64);
  sum_err_ = at::zeros({}, f64);
  l0_ = at::zeros({}, f64.dtype(at::kLong));
  fired_ = at::zeros({encoder.d_latent() + 1}, f64.dtype(at::kBool));  // + a sink slot
}

void Evaluator::add(const at::Tensor& x_in) {
  if (x_in.dim() != 2 || x_in.size(1) != enc_.d_in()) {
    throw Error("SAE evaluation: vectors must be [N, " + std::to_string(enc_.d_in()) + "]");
  }
  if (x_in.size(0) == 0) return;
  const Encoder::Output code = enc_.encode(x_in);
  const at::Tensor x = x_in.to(enc_.device(), at::kDouble);
  const at::Tensor err = x - enc_.decode(code).to(at::kDouble);
  sum_x_.add_(x.sum(0));
  sum_xx_.add_(x.square().sum());
  sum_err_.add_(err.square().sum());
  const at::Tensor active = code.ids >= 0;
  l0_.add_(active.sum());
  const at::Tensor sink = at::full({}, enc_.d_latent(), code.ids.options());
  fired_.index_fill_(0, at::where(active, code.ids, sink).to(at::kLong).reshape({-1}), true);
  n_ += x_in.size(0);
}

EvalStats Evaluator::result() const {
  if (n_ == 0) throw Error("SAE evaluation: no vectors to evaluate (empty corpus?)");
  const double n = static_cast<double>(n_);
  // Total variance = sum ||x||^2 - n ||mean||^2 (float64 accumulation keeps this stable for the
  // magnitudes of key vectors).
  const double total = sum_xx_.item<double>() - sum_x_.square().sum().item<double>() / n;
  EvalStats s;
  s.vectors = n_;
  const double err = sum_err_.item<double>();
  s.fvu = total > 0 ? err / total : (err > 0 ? std::numeric_limits<double>::infinity() : 0.0);
  s.dead_fraction =
      1.0 - fired_.narrow(0, 0, enc_.d_latent()).to(at::kDouble).mean().item<double>();
  s.mean_l0 = static_cast<double>(l0_.item<int64_t>()) / n;
  return s;
}

EvalStats evaluate(const Encoder& encoder, const at::Tensor& vectors, int64_t batch) {
  Evaluator ev(encoder);
  const int64_t n = vectors.size(0);
  for (int64_t s = 0; s < n; s += batch)
    ev.add(vectors.narrow(0, s, std::min(batch, n - s)));
  return ev.result();
}

}  // namespace s3::sae
