// Command-line options whose value is one of an enum's names (core/base/enum_names.h): the
// spelling is checked while parsing (exit 2, naming the choices) and the enum stored, so no
// command compares strings afterwards.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "core/base/enum_names.h"

namespace s3::cli {

template <class E, std::size_t N>
CLI::Option* add_enum_option(CLI::App& app, const std::string& name, E& value,
                             const EnumNames<E, N>& table, const std::string& help) {
  auto set = [&value, &table, name](const std::string& text) {
    const std::optional<E> parsed = parse_enum(table, text);
    if (!parsed)
      throw CLI::ValidationError(name, "'" + text + "' is not one of " + enum_choices(table));
    value = *parsed;
  };
  return app.add_option_function<std::string>(name, set, help + ": " + enum_choices(table))
      ->default_str(std::string(enum_name(table, value)))
      ->type_name("CHOICE");
}

}  // namespace s3::cli
