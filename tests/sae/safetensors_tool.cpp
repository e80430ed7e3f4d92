// Test-only tool for tests/sae/test_safetensors_interop.py (the C++ side of the interop tests):
//
//   safetensors_tool write FILE      writes the known tensors below (Python checks them)
//   safetensors_tool dump FILE       prints {"metadata", "tensors": {name: {dtype, shape, values}}}
//   safetensors_tool write-sae DIR   writes an SAE directory (2 layers, d_in 8, 32 latents, k 4)
//
// Errors: one line on stderr, exit 1 (2 for usage).
#include <ATen/ATen.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "sae/safetensors.h"
#include "sae/tensor_io.h"
#include "sae/weights.h"

namespace {

using namespace s3::sae;

// Keep in sync with expected_tensors() in test_safetensors_interop.py.
std::map<std::string, at::Tensor> known_tensors() {
  const at::Tensor base = at::arange(24, at::kFloat).view({2, 3, 4}) * 0.5 - 3;
  return {
      {"f32", base},
      {"f16", base.to(at::kHalf)},
      {"bf16", base.to(at::kBFloat16)},
      {"f64", at::arange(5, at::kDouble) / 3},
      {"i64", at::tensor({int64_t{-3}, int64_t{0}, int64_t{1} << 40, -(int64_t{1} << 40)})},
      {"i32", at::arange(-4, 5, at::kInt)},
      {"i16", at::arange(-300, 300, 100, at::kShort)},
      {"u8", at::arange(0, 250, 10, at::kByte)},
      {"i8", at::tensor({-128, 0, 127}, at::kChar)},
      {"bool", at::tensor({1, 0, 1}, at::kByte).to(at::kBool)},
      {"scalar", at::full({}, 42.5f)},
      {"empty", at::zeros({0, 3})},
      {"transposed", base.view({6, 4}).t()},  // non-contiguous source
  };
}

int write(const std::string& file) {
  save_tensors(file, known_tensors(),
               {{"creator", "s3attn"}, {"note", "\xc3\xbcnicode \xe2\x9c\x93"}});
  return 0;
}

int dump(const std::string& file) {
  const SafetensorsFile st = SafetensorsFile::open(file);
  nlohmann::json out;
  out["metadata"] = st.metadata();
  out["tensors"] = nlohmann::json::object();
  for (const auto& info : st.tensors()) {
    const at::Tensor t = read_tensor(st, info.name).to(at::kDouble).contiguous().view({-1});
    std::vector<double> values(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
    out["tensors"][info.name] = {
        {"dtype", dtype_name(info.dtype)}, {"shape", info.shape}, {"values", values}};
  }
  std::cout << out.dump() << "\n";
  return 0;
}

int write_sae(const std::string& dir) {
  at::manual_seed(3);
  SaeInfo info;
  info.layers = {2, 9};
  info.d_in = 8;
  info.d_latent = 32;
  info.k = 4;
  info.head_mode = HeadMode::kPerHead;
  info.model_fingerprint = "fp";
  std::map<int, SaeWeights> layers;
  for (int l : info.layers) {
    SaeWeights w;
    w.W_dec = at::randn({32, 8});
    w.W_dec = w.W_dec / w.W_dec.norm(2, {1}, true);
    w.W_enc = w.W_dec.clone();
    w.b_enc = at::zeros({32});
    w.b_dec = at::randn({8});
    layers[l] = w;
  }
  save_sae(dir, info, layers);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc != 3) throw s3::UsageError("usage: safetensors_tool write|dump|write-sae PATH");
    const std::string cmd = argv[1];
    if (cmd == "write") return write(argv[2]);
    if (cmd == "dump") return dump(argv[2]);
    if (cmd == "write-sae") return write_sae(argv[2]);
    throw s3::UsageError("unknown command '" + cmd + "'");
  } catch (const s3::UsageError& e) {
    std::cerr << "safetensors_tool: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "safetensors_tool: " << e.what() << "\n";
    return 1;
  }
}
