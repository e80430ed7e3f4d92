// s3attn logits: every position's logits for given token ids, through the uncached forward and the
// cached prefill/decode path. A diagnostic for checking an export against transformers.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/device_flags.h"
#include "core/runtime/diagnostics.h"
#include "core/runtime/model.h"

namespace s3::cli {

Command add_logits(CLI::App& root) {
  struct Args {
    std::string model, device = "cpu";
    std::optional<DType> dtype;
    std::vector<int32_t> ids;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app =
      root.add_subcommand("logits", "Print the logits of every position as JSON (diagnostic)");
  app->add_option("--model", args->model, "model directory")->required();
  app->add_option("--ids", args->ids, "token ids, comma separated")->required()->delimiter(',');
  add_device_option(*app, args->device);
  add_model_dtype_option(*app, args->dtype);

  auto run = [args]() {
    ModelLoadOptions load;
    load.device = DeviceSpec::parse(args->device);
    load.dtype = args->dtype;
    const Model model = Model::load(args->model, load);
    const LogitsDump dump = compute_logits(model, args->ids);
    std::cout << nlohmann::json{{"forward", dump.forward}, {"cached", dump.cached}}.dump() << "\n";
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
