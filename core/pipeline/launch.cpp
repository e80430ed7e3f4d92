#include "core/pipeline/launch.h"

#include <cstdlib>

#include "core/base/error.h"

namespace s3 {

namespace {

// The variable's value, or `fallback` when unset or empty; `present` says which.
int env_int(const char* name, int fallback, bool& present) {
  const char* v = std::getenv(name);
  present = v && *v;
  if (!present) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1000000)
    throw UsageError(std::string(name) + "=" + v + " is not a valid number");
  return static_cast<int>(x);
}

}  // namespace

LaunchEnvironment LaunchEnvironment::from_environment() {
  struct Names {
    const char *rank, *world, *local;
  };
  constexpr Names kTorchrun{"RANK", "WORLD_SIZE", "LOCAL_RANK"};
  constexpr Names kSlurm{"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"};
  bool have_rank = false, have_world = false, have_local = false;
  Names names = kTorchrun;
  LaunchEnvironment env;
  env.rank = env_int(names.rank, 0, have_rank);
  env.world = env_int(names.world, 1, have_world);
  if (!have_rank && !have_world) {
    names = kSlurm;
    env.rank = env_int(names.rank, 0, have_rank);
    env.world = env_int(names.world, 1, have_world);
  }
  if (!have_rank && !have_world) return LaunchEnvironment{};
  env.rank_variable = names.rank;
  if (have_rank != have_world) {
    throw UsageError(std::string("set both ") + names.rank + " and " + names.world +
                     " (or neither)");
  }
  if (env.world < 1) {
    throw UsageError(std::string(names.world) + "=" + std::to_string(env.world) +
                     " must be at least 1");
  }
  if (env.rank >= env.world) {
    throw UsageError(std::string(names.rank) + "=" + std::to_string(env.rank) + " must be below " +
                     names.world + "=" + std::to_string(env.world));
  }
  env.local_rank = env_int(names.local, 0, have_local);
  return env;
}

}  // namespace s3
