// --device and the model's --dtype, declared once for every command that loads a model (ask, embed,
// generate, index, logits, longbench, sae train, sae eval), and --decode-backend for those that
// generate (generate, ask, longbench): one spelling, one help text, checked while the command line
// is parsed (exit 2).
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "core/base/dtype.h"
#include "core/runtime/generation.h"

namespace s3::cli {

// Whether the command runs once per rank under torchrun / srun (index, longbench): "cuda" then
// means the local rank's GPU.
enum class DeviceScope { kOneProcess, kPerRank };

// --device: cpu, cuda or cuda:N (default "cpu", the value `device` holds).
CLI::Option* add_device_option(CLI::App& app, std::string& device,
                               DeviceScope scope = DeviceScope::kOneProcess);

// The model's dtype: float32, bfloat16 or float16; empty (the default) keeps the exported dtype.
// Named --dtype everywhere except the sae commands, which have an SAE dtype too and say
// --model-dtype.
CLI::Option* add_model_dtype_option(CLI::App& app, std::optional<DType>& dtype,
                                    const std::string& name = "--dtype");

// --decode-backend: torchscript (model.ts, the default) or aoti (core/runtime/aoti_decode.h).
CLI::Option* add_decode_backend_option(CLI::App& app, DecodeBackend& backend);

}  // namespace s3::cli
