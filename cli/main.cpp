// s3attn: memory-bounded long-context inference with attention-aligned retrieval.
// Throw inside, catch once here: one line on stderr (control characters escaped), exit 2 for usage
// and 1 for everything else.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/base/error.h"
#include "core/base/error_text.h"
#include "core/base/version.h"

namespace {

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("s3attn");
  logger->set_pattern("%^[%l]%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "s3attn: long-context inference with the model's own attention as a retrieval index"};
  app.require_subcommand(1);
  app.set_version_flag("--version", s3::version_line());
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "stderr log level: trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->envname("S3ATTN_LOG_LEVEL");

  std::vector<s3::cli::Command> commands = {
      s3::cli::add_tokenize(app), s3::cli::add_generate(app), s3::cli::add_logits(app),
      s3::cli::add_index(app),    s3::cli::add_ask(app),      s3::cli::add_longbench(app),
      s3::cli::add_inspect(app),  s3::cli::add_embed(app),    s3::cli::add_merge(app),
  };
  for (auto& command : s3::cli::add_sae(app))
    commands.push_back(std::move(command));

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help / --version
  } catch (const CLI::ParseError& e) {
    std::string where = "s3attn";  // the deepest subcommand given, e.g. "s3attn sae train"
    for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
      sub = sub->get_subcommands().front();
      where += " " + sub->get_name();
    }
    std::fprintf(stderr, "error: %s (see '%s --help')\n", e.what(), where.c_str());
    return 2;
  }

  try {
    setup_logging(log_level);
    for (const auto& command : commands)
      if (command.app->parsed()) return command.run();
    return 2;
  } catch (const s3::UsageError& e) {
    std::fprintf(stderr, "error: %s\n", s3::cli::printable(e.what()).c_str());
    return 2;
  } catch (const s3::Error& e) {
    std::fprintf(stderr, "error: %s\n", s3::cli::printable(e.what()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    // A bug (every user-caused failure is an s3::Error), or a full device: still one line, without
    // the backtrace LibTorch appends to its messages.
    if (s3::is_out_of_memory(e.what())) {  // a full device, whichever path it surfaced on
      std::fprintf(stderr, "error: out of device memory (%s)\n",
                   s3::cli::printable(s3::first_line(e.what())).c_str());
      return 1;
    }
    std::fprintf(stderr, "error: internal: %s\n",
                 s3::cli::printable(s3::first_line(e.what())).c_str());
    return 1;
  }
}
