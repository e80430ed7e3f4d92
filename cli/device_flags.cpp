#include "cli/device_flags.h"

#include "cli/enum_option.h"
#include "core/runtime/device.h"

namespace s3::cli {
namespace {

// CLI11 validators return an error message, or "" for a valid value; CLI11 puts the option's name
// in front, so the parser's own "--flag: " is dropped.
std::string without_flag(const std::string& message) {
  const size_t colon = message.find(": ");
  return colon == std::string::npos ? message : message.substr(colon + 2);
}

std::string device_error(std::string& text) {
  try {
    DeviceSpec::parse(text);
    return {};
  } catch (const std::exception& e) {
    return without_flag(e.what());
  }
}

}  // namespace

CLI::Option* add_device_option(CLI::App& app, std::string& device, DeviceScope scope) {
  const char* help =
      scope == DeviceScope::kPerRank
          ? "cpu, cuda or cuda:N (under torchrun or srun, cuda is the local rank's GPU)"
          : "cpu, cuda or cuda:N";
  return app.add_option("--device", device, help)
      ->check(CLI::Validator(device_error, "DEVICE", "device"))
      ->capture_default_str();
}

CLI::Option* add_model_dtype_option(CLI::App& app, std::optional<DType>& dtype,
                                    const std::string& name) {
  auto set = [&dtype, name](const std::string& text) {
    dtype = parse_dtype(text);
    if (!dtype) throw CLI::ValidationError(name, "'" + text + "' is not one of " + dtype_choices());
  };
  return app
      .add_option_function<std::string>(
          name, set, "the model's dtype: float32, bfloat16 or float16 (default: the exported one)")
      ->type_name("DTYPE");
}

CLI::Option* add_decode_backend_option(CLI::App& app, DecodeBackend& backend) {
  return add_enum_option(app, "--decode-backend", backend, kDecodeBackendNames,
                         "what runs a decode step: model.ts (the reference) or the AOTInductor "
                         "package of scripts/export_aoti.py");
}

}  // namespace s3::cli
