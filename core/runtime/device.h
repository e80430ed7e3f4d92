// Device and dtype selection, named the way the CLI spells them. The header is free of LibTorch;
// core/runtime/torch_util.h converts to torch types.
#pragma once

#include <optional>
#include <string>

namespace s3 {

struct DeviceSpec {
  std::string name = "cpu";  // "cpu", "cuda" or "cuda:N"
  bool is_cuda() const { return name.rfind("cuda", 0) == 0; }

  // Parses a --device value; throws UsageError for anything else.
  static DeviceSpec parse(const std::string& text);
  // Throws Error when the device is CUDA and no such GPU is present.
  void require_available() const;
  // The device of the process with this rank on its host (torchrun's LOCAL_RANK, Slurm's
  // SLURM_LOCALID): "cuda" becomes cuda:(local_rank mod the visible GPUs), so that one GPU per
  // process works both when every process sees all GPUs (torchrun) and when the launcher binds one
  // to each (srun --gpus-per-task=1). "cpu" and an explicit "cuda:N" are kept.
  DeviceSpec for_local_rank(int local_rank) const;
  // Makes a CUDA device the process's current device (kernels and streams that take the current
  // device land on it); no-op for the CPU and plain "cuda".
  void make_current() const;
};

// The device's marketing name for run manifests and benchmark rows: "NVIDIA H100 80GB HBM3" for a
// CUDA device (the current one for plain "cuda"), "cpu" on the CPU.
std::string device_name(const DeviceSpec& device);

// Wall-clock barrier: waits for queued GPU work on the device (no-op on the CPU).
void synchronize(const DeviceSpec& device);

// Peak bytes allocated on a CUDA device since the last reset (0 on the CPU), and the reset.
long long peak_device_memory(const DeviceSpec& device);
void reset_peak_device_memory(const DeviceSpec& device);

}  // namespace s3
