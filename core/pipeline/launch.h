// Where this process stands in a job started by torchrun or srun (docs/scale-out.md): its rank, the
// number of processes and its rank on this host, read from the variables those launchers set.
// Free of LibTorch.
#pragma once

#include <string>

namespace s3 {

struct LaunchEnvironment {
  int rank = 0;
  int world = 1;
  int local_rank = 0;                  // selects the GPU on this host (DeviceSpec::for_local_rank)
  std::string rank_variable = "RANK";  // the variable the rank came from, for messages

  bool sharded() const { return world > 1; }

  // RANK / WORLD_SIZE / LOCAL_RANK (torchrun), else SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID
  // (srun); rank 0 of 1 when neither pair is set, local rank 0 when its variable is unset. Throws
  // UsageError naming the variable for a value that is not a number, a rank outside the world, or
  // one variable of a pair without the other.
  static LaunchEnvironment from_environment();
};

}  // namespace s3
