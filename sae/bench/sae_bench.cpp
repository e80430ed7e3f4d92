// sae_bench: times the SAE encoder on the index scan's hot path, per layer and chunk.
//
//   sae_bench --device cuda            # the paper-size case on the GPU (bf16)
//   sae_bench --device cpu --reps 3    # the same on the CPU (float32)
//
// Case (defaults): d_in 128, 16,384 latents, k 128, one 4,096-token chunk x 8 KV heads = 32,768
// vectors, random weights and inputs. Each row is the median (and min) over --reps timed runs
// after --warmup runs, with the device synchronised before and after each run. Results go to
// stdout as a table and, with --json, as one JSON object per row; progress goes to stderr.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "sae/device.h"
#include "sae/encoder.h"
#include "sae/topk.h"
#include "sae/trainer.h"

namespace {

struct Args {
  std::string device = "cuda";
  std::string dtype = "auto";
  int64_t tokens = 4096;
  int64_t heads = 8;
  int64_t d_in = 128;
  int64_t latents = 16384;
  int64_t k = 128;
  int64_t reps = 20;
  int64_t warmup = 3;
  int64_t group_size = 8;
  int64_t extra_groups = 32;
  int64_t exact_rows = 256;
  int64_t max_rows = 8192;
  bool json = false;
  int64_t threads = 0;   // CPU intra-op threads; 0 = ATen's default
  bool train = false;    // also time Trainer::step
  int64_t batch = 4096;  // trainer batch
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app{
      "Times the SAE encoder per layer and chunk (see the top of sae/bench/sae_bench.cpp)"};
  app.add_option("--device", a.device, "cuda | cpu | cuda:N")->capture_default_str();
  app.add_option("--dtype", a.dtype, "auto | float32 | bfloat16 | float16")->capture_default_str();
  app.add_option("--tokens", a.tokens)->capture_default_str();
  app.add_option("--heads", a.heads)->capture_default_str();
  app.add_option("--d-in", a.d_in)->capture_default_str();
  app.add_option("--latents", a.latents)->capture_default_str();
  app.add_option("--k", a.k)->capture_default_str();
  app.add_option("--reps", a.reps)->capture_default_str();
  app.add_option("--warmup", a.warmup)->capture_default_str();
  app.add_option("--group-size", a.group_size)->capture_default_str();
  app.add_option("--extra-groups", a.extra_groups)->capture_default_str();
  app.add_option("--exact-rows", a.exact_rows)->capture_default_str();
  app.add_option("--max-rows", a.max_rows)->capture_default_str();
  app.add_flag("--json", a.json, "also print one JSON object per row");
  app.add_flag("--train", a.train, "also time a training step at --k");
  app.add_option("--batch", a.batch, "trainer batch")->capture_default_str();
  app.add_option("--threads", a.threads, "CPU intra-op threads (0 = ATen's default)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    std::exit(0);
  } catch (const CLI::ParseError& e) {
    throw s3::UsageError(e.what());
  }
  return a;
}

struct Timing {
  double median_ms = 0;
  double min_ms = 0;
};

Timing time_it(const c10::Device& dev, int64_t warmup, int64_t reps,
               const std::function<void()>& fn) {
  for (int64_t i = 0; i < warmup; ++i)
    fn();
  s3::sae::synchronize(dev);
  std::vector<double> ms;
  for (int64_t i = 0; i < reps; ++i) {
    s3::sae::synchronize(dev);
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    s3::sae::synchronize(dev);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front()};
}

int run(const Args& a) {
  using namespace s3::sae;
  if (a.reps < 1 || a.warmup < 0) throw s3::UsageError("--reps must be >= 1, --warmup >= 0");
  if (a.threads > 0) at::set_num_threads(static_cast<int>(a.threads));
  const c10::Device dev = resolve_device(a.device);
  const at::ScalarType dtype = resolve_dtype(parse_encoder_dtype(a.dtype), dev);
  const int64_t n = a.tokens * a.heads;

  // Random SAE in the trainer's initial form (unit decoder rows, W_enc = W_dec, small biases)
  // and inputs of varying norm, generated on the CPU from a fixed seed.
  at::manual_seed(0);
  SaeWeights w;
  w.W_dec = at::randn({a.latents, a.d_in});
  w.W_dec = w.W_dec / w.W_dec.norm(2, {1}, true);
  w.W_enc = w.W_dec + 0.1 * at::randn({a.latents, a.d_in}) / std::sqrt(double(a.d_in));
  w.b_enc = -0.1 * at::rand({a.latents});
  w.b_dec = 0.1 * at::randn({a.d_in});
  const at::Tensor x =
      (at::randn({n, a.d_in}) * (1 + at::rand({n, 1}))).to(dev, dtype).contiguous();

  EncoderOptions eo;
  eo.device = a.device;
  eo.dtype = parse_encoder_dtype(a.dtype);
  eo.group_size = a.group_size;
  eo.extra_groups = a.extra_groups;
  eo.exact_rows = a.exact_rows;
  eo.max_rows = a.max_rows;
  eo.bitmap = s3::sae::BitmapMode::kAten;
  const Encoder enc(w, a.k, eo);
  // The fused CUDA kernel (sae/topk_bitmap_kernel.h), when this build and device have it.
  eo.bitmap = s3::sae::BitmapMode::kAuto;
  const Encoder fused(w, a.k, eo);
  eo.fused_candidates = false;
  const Encoder fused_full(w, a.k, eo);
  const TopKOptions topk{a.group_size, a.extra_groups, a.exact_rows};

  const int64_t words = (a.tokens + 63) / 64;
  const at::Tensor host = at::empty(
      {a.latents, words}, at::TensorOptions().dtype(at::kLong).pinned_memory(dev.is_cuda()));
  const at::Tensor pre = enc.preactivations(x);

  std::vector<std::pair<std::string, std::function<void()>>> cases = {
      {"matmul (preactivations)", [&] { (void)enc.preactivations(x); }},
      {"topk_relu (prefiltered)", [&] { (void)topk_relu(pre, a.k, topk, false); }},
      {"at::topk (values only)", [&] { (void)pre.topk(a.k, 1, true, false); }},
      {"encode: ids + values [N, k]", [&] { (void)enc.encode(x); }},
      {"feature_bitmap (aten)", [&] { (void)enc.feature_bitmap(x, a.heads); }},
      {"feature_bitmap (aten) + copy to host",
       [&] { host.copy_(enc.feature_bitmap(x, a.heads), /*non_blocking=*/true); }},
  };
  if (fused.uses_fused_bitmap()) {
    cases.push_back(
        {"feature_bitmap (fused kernel)", [&] { (void)fused.feature_bitmap(x, a.heads); }});
    cases.push_back({"feature_bitmap (fused, full rows only)",
                     [&] { (void)fused_full.feature_bitmap(x, a.heads); }});
    cases.push_back({"feature_bitmap (fused) + copy to host",
                     [&] { host.copy_(fused.feature_bitmap(x, a.heads), /*non_blocking=*/true); }});
  }
  if (a.latents * n <= (int64_t{1} << 27)) {  // its int64 keys take 8 bytes per element
    cases.push_back(
        {"topk_relu_dense (reference)", [&] { (void)topk_relu_dense(pre, a.k, false); }});
  }

  std::cerr << "sae_bench: " << a.device << " " << dtype_string(dtype) << " ("
            << at::get_num_threads() << " CPU threads), " << a.tokens << " tokens x " << a.heads
            << " heads = " << n << " vectors, d_in " << a.d_in << ", " << a.latents
            << " latents, k " << a.k << "\n";
  std::printf("%-34s %10s %10s\n", "case (per layer-chunk)", "median ms", "min ms");
  for (const auto& [name, fn] : cases) {
    const Timing t = time_it(dev, a.warmup, a.reps, fn);
    std::printf("%-34s %10.3f %10.3f\n", name.c_str(), t.median_ms, t.min_ms);
    if (a.json) {
      std::printf(
          "{\"tool\": \"sae_bench\", \"case\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", "
          "\"tokens\": %lld, \"heads\": %lld, \"d_in\": %lld, \"latents\": %lld, \"k\": %lld, "
          "\"group_size\": %lld, \"extra_groups\": %lld, \"reps\": %lld, \"median_ms\": %.4f, "
          "\"min_ms\": %.4f, \"torch\": \"%s\"}\n",
          name.c_str(), a.device.c_str(), dtype_string(dtype).c_str(), (long long)a.tokens,
          (long long)a.heads, (long long)a.d_in, (long long)a.latents, (long long)a.k,
          (long long)a.group_size, (long long)a.extra_groups, (long long)a.reps, t.median_ms,
          t.min_ms, TORCH_VERSION);
    }
    std::fflush(stdout);
  }
  std::printf("unresolved rows (left approximate): %lld\n",
              static_cast<long long>(enc.unresolved_rows()));
  if (fused.uses_fused_bitmap()) {
    const int64_t before = fused.fused_full_rows();
    (void)fused.feature_bitmap(x, a.heads);
    std::printf("fused kernel: %lld of %lld rows took the full-row path\n",
                static_cast<long long>(fused.fused_full_rows() - before),
                static_cast<long long>(n));
  }

  if (a.train) {
    TrainerOptions to;
    to.latents = a.latents;
    to.k = a.k;
    to.batch = a.batch;
    to.steps = 1'000'000;
    to.device = a.device;
    to.stats_every = 1'000'000;  // no per-step host copies
    to.dead_after = 1;           // AuxK on from the start: the steady-state cost
    Trainer trainer(to, a.d_in);
    const at::Tensor batch = at::randn({a.batch, a.d_in}).to(dev);
    trainer.step(batch);  // initialisation (b_dec, scale) outside the timing
    const Timing t = time_it(dev, a.warmup, a.reps, [&] { trainer.step(batch); });
    std::printf("%-34s %10.3f %10.3f   (%.0f vectors/s, batch %lld, fp32)\n", "trainer step",
                t.median_ms, t.min_ms, a.batch / (t.median_ms / 1e3), (long long)a.batch);
    if (a.json) {
      std::printf(
          "{\"tool\": \"sae_bench\", \"case\": \"trainer step\", \"device\": \"%s\", "
          "\"d_in\": %lld, \"latents\": %lld, \"k\": %lld, \"batch\": %lld, \"median_ms\": "
          "%.4f, \"vectors_per_s\": %.0f, \"torch\": \"%s\"}\n",
          a.device.c_str(), (long long)a.d_in, (long long)a.latents, (long long)a.k,
          (long long)a.batch, t.median_ms, a.batch / (t.median_ms / 1e3), TORCH_VERSION);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const s3::UsageError& e) {
    std::cerr << "sae_bench: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sae_bench: " << e.what() << "\n";
    return 1;
  }
}
