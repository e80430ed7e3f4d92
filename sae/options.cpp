#include "sae/options.h"

#include <optional>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/base/dtype.h"
#include "core/base/error.h"

namespace s3::sae {
namespace {

[[noreturn]] void usage(const std::string& what) {
  throw UsageError(what);
}

std::string num(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

std::string_view to_string(HeadMode mode) {
  return enum_name(kHeadModeNames, mode);
}

HeadMode parse_head_mode(std::string_view text) {
  if (const std::optional<HeadMode> mode = parse_enum(kHeadModeNames, text)) return *mode;
  usage("--head-mode must be per-head or concat, not '" + std::string(text) + "'");
}

int64_t expected_d_in(HeadMode mode, int64_t n_kv_heads, int64_t head_dim) {
  return mode == HeadMode::kPerHead ? head_dim : n_kv_heads * head_dim;
}

void validate_device(const std::string& device, std::string_view flag) {
  if (device == "cpu" || device == "cuda") return;
  if (device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
      std::all_of(device.begin() + 5, device.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return;
  }
  usage(std::string(flag) + " must be cpu, cuda or cuda:N, not '" + device + "'");
}

std::optional<s3::DType> parse_encoder_dtype(std::string_view name) {
  if (name == "auto") return std::nullopt;
  if (const std::optional<s3::DType> dtype = s3::parse_dtype(name)) return dtype;
  usage("the SAE encoder's dtype must be auto or one of " + dtype_choices() + ", not '" +
        std::string(name) + "'");
  return std::nullopt;  // not reached: usage() throws
}

void EncoderOptions::validate() const {
  validate_device(device);
  if (k < 0) usage("--k must be positive (0 = the SAE's own k), not " + std::to_string(k));
  if (group_size < 1) usage("encoder group_size must be >= 1");
  if (extra_groups < 0) usage("encoder extra_groups must be >= 0");
  if (exact_rows < 0) usage("encoder exact_rows must be >= 0");
  if (max_rows < 1) usage("encoder max_rows must be >= 1");
}

void TrainerOptions::validate() const {
  if (latents < 1 || latents > kMaxLatents)
    usage("--latents must be between 1 and " + std::to_string(kMaxLatents) + ", not " +
          std::to_string(latents));
  if (k < 1) usage("--k must be at least 1, not " + std::to_string(k));
  if (k > latents) {
    usage("--k " + std::to_string(k) + " is larger than --latents " + std::to_string(latents) +
          ": a vector can not have more active latents than there are");
  }
  if (steps < 1) usage("--steps must be at least 1, not " + std::to_string(steps));
  if (batch < 1 || batch > kMaxBatch)
    usage("--batch must be between 1 and " + std::to_string(kMaxBatch) + ", not " +
          std::to_string(batch));
  if (!(lr > 0) || !std::isfinite(lr)) usage("--lr must be a positive number, not " + num(lr));
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
    usage("Adam betas must be in [0, 1)");
  }
  if (!(eps > 0)) usage("Adam eps must be positive");
  if (warmup_steps < -1) usage("--warmup-steps must be >= 0 (or -1 for auto)");
  if (!(lr_decay_fraction >= 0 && lr_decay_fraction <= 1)) {
    usage("--lr-decay-fraction must be in [0, 1], not " + num(lr_decay_fraction));
  }
  if (k_aux < 0) usage("--k-aux must be >= 0 (0 = auto), not " + std::to_string(k_aux));
  if (k_aux > latents) {
    usage("--k-aux " + std::to_string(k_aux) + " is larger than --latents " +
          std::to_string(latents));
  }
  if (!(aux_weight >= 0) || !std::isfinite(aux_weight)) {
    usage("--aux-weight must be >= 0, not " + num(aux_weight));
  }
  if (dead_after < 0) usage("--dead-after must be >= 0 (0 = auto)");
  if (b_dec_init != "geometric-median" && b_dec_init != "mean") {
    usage("--b-dec-init must be geometric-median or mean, not '" + b_dec_init + "'");
  }
  if (stats_every < 1) usage("stats_every must be >= 1");
  validate_device(device);
}

int64_t TrainerOptions::resolved_k_aux(int64_t d_in) const {
  int64_t v = k_aux;
  if (v == 0) {
    // OpenAI: "a power of two close to d_model / 2".
    const double half = std::max<double>(1.0, static_cast<double>(d_in) / 2.0);
    v = int64_t{1} << static_cast<int>(std::lround(std::log2(half)));
  }
  return std::min(v, latents);
}

int64_t TrainerOptions::resolved_dead_after() const {
  if (dead_after > 0) return dead_after;
  const int64_t run = steps * batch / 10;
  return std::max<int64_t>(batch, std::min<int64_t>(10'000'000, run));
}

int64_t TrainerOptions::resolved_warmup_steps() const {
  if (warmup_steps >= 0) return warmup_steps;
  return std::min<int64_t>(1000, steps / 20);
}

void to_json(nlohmann::json& j, const TrainerOptions& o) {
  j = nlohmann::json{{"latents", o.latents},
                     {"k", o.k},
                     {"steps", o.steps},
                     {"batch", o.batch},
                     {"lr", o.lr},
                     {"beta1", o.beta1},
                     {"beta2", o.beta2},
                     {"eps", o.eps},
                     {"warmup_steps", o.warmup_steps},
                     {"lr_decay_fraction", o.lr_decay_fraction},
                     {"k_aux", o.k_aux},
                     {"aux_weight", o.aux_weight},
                     {"dead_after", o.dead_after},
                     {"b_dec_init", o.b_dec_init},
                     {"normalize_inputs", o.normalize_inputs},
                     {"seed", o.seed},
                     {"device", o.device},
                     {"stats_every", o.stats_every}};
}

void from_json(const nlohmann::json& j, TrainerOptions& o) {
  if (!j.is_object()) throw Error("trainer options: expected a JSON object");
  auto get = [&](const char* key, auto& field) {
    auto it = j.find(key);
    if (it == j.end()) return;
    try {
      it->get_to(field);
    } catch (const nlohmann::json::exception&) {
      throw Error(std::string("trainer options: '") + key + "' has the wrong type");
    }
  };
  get("latents", o.latents);
  get("k", o.k);
  get("steps", o.steps);
  get("batch", o.batch);
  get("lr", o.lr);
  get("beta1", o.beta1);
  get("beta2", o.beta2);
  get("eps", o.eps);
  get("warmup_steps", o.warmup_steps);
  get("lr_decay_fraction", o.lr_decay_fraction);
  get("k_aux", o.k_aux);
  get("aux_weight", o.aux_weight);
  get("dead_after", o.dead_after);
  get("b_dec_init", o.b_dec_init);
  get("normalize_inputs", o.normalize_inputs);
  get("seed", o.seed);
  get("device", o.device);
  get("stats_every", o.stats_every);
}

}  // namespace s3::sae
