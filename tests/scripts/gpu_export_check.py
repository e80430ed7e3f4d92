"""Exporter checks on a CUDA machine (not collected by pytest; run by hand or by the GPU script):

    python3 tests/scripts/gpu_export_check.py WORKDIR [--skip-8b] [--contexts 8192,32768]

1. every tiny family exported with --device cuda --verify, float32 and bfloat16;
2. model.ts prefill / chunked prefill / decode on CUDA with the math SDPA backend disabled (so GQA and
   masks must go through the flash / memory-efficient kernels);
3. --random-init of configs/models/llama-3.1-8b.json with --device cuda --dtype bfloat16 --verify: wall
   time and peak host memory of the export (a subprocess), then prefill / decode timings of the 8B-shaped
   model.ts with the runtime settings of docs/model-format.md (no cuDNN SDPA, no graph-executor
   optimisation).
Prints one JSON line per result.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402


def emit(**kw):
    print(json.dumps(kw), flush=True)


def tiny_checks(work: Path):
    from s3export.cli import main
    from tiny_models import EXTRA_FAMILIES, FAMILIES, make_tiny_model

    for fam in FAMILIES + EXTRA_FAMILIES:
        src = make_tiny_model(fam, work / "tiny" / fam)
        for dtype in ("float32", "bfloat16"):
            out = work / "exp" / f"{fam}-{dtype}"
            rc = main(["--hf", str(src), "--out", str(out), "--device", "cuda", "--dtype", dtype, "--verify",
                       "--overwrite"])
            emit(check="tiny_verify_cuda", family=fam, dtype=dtype, ok=rc == 0)
        ts = torch.jit.load(str(work / "exp" / f"{fam}-bfloat16" / "model.ts"), map_location="cuda")
        ids = torch.randint(0, 300, (2, 40), device="cuda")
        with torch.no_grad(), sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
            try:
                full = ts(ids).float()
                k, v = ts.new_cache(2, 48)
                ts.prefill(ids[:, :10], k, v, 0)
                a = ts.prefill(ids[:, 10:30], k, v, 10).float()
                for p in range(30, 40):
                    b = ts.decode(ids[:, p:p + 1], k, v, p).float()
                emit(check="no_math_sdpa", family=fam, ok=True,
                     chunk_diff=(a - full[:, 29]).abs().max().item(), decode_diff=(b - full[:, 39]).abs().max().item(),
                     max_logit=full.abs().max().item())
            except RuntimeError as e:
                emit(check="no_math_sdpa", family=fam, ok=False, error=str(e).splitlines()[0])


def big_checks(work: Path, contexts):
    from s3export.load_hf import load_random_init_config

    cfg = ROOT / "configs" / "models" / "llama-3.1-8b.json"
    out = work / "llama-3.1-8b-random"
    t0 = time.time()
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "export_model.py"), "--random-init", str(cfg),
                        "--out", str(out), "--device", "cuda", "--dtype", "bfloat16", "--overwrite", "--verify"],
                       capture_output=True, text=True)
    wall = time.time() - t0
    rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    emit(check="export_8b_random_with_verify", rc=p.returncode, wall_s=round(wall, 1),
         peak_host_rss_gib=round(rss_gib, 1),
         model_ts_gib=round((out / "model.ts").stat().st_size / 2**30, 2) if (out / "model.ts").exists() else None,
         stderr=p.stderr[-2000:], stdout=p.stdout[-800:])
    if p.returncode != 0:
        return
    t0 = time.time()
    ts = torch.jit.load(str(out / "model.ts"), map_location="cuda")
    torch.cuda.synchronize()
    emit(check="load_8b", s=round(time.time() - t0, 1), gpu_gib=round(torch.cuda.memory_allocated() / 2**30, 1))
    spec = load_random_init_config(cfg)
    with torch.no_grad():
        for n in contexts:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            ids = torch.randint(0, spec.vocab_size, (1, n), device="cuda")
            k, v = ts.new_cache(1, n + 64)
            ts.prefill(ids[:, :128], k, v, 0)  # warm-up
            torch.cuda.synchronize()
            t0 = time.time()
            logits = ts.prefill(ids, k, v, 0)
            torch.cuda.synchronize()
            pre = time.time() - t0
            tok = logits.argmax(-1, keepdim=True)
            for i in range(3):
                logits = ts.decode(tok, k, v, n + i)
            torch.cuda.synchronize()
            t0 = time.time()
            steps = 32
            for i in range(steps):
                tok = logits.argmax(-1, keepdim=True)
                logits = ts.decode(tok, k, v, n + 3 + i)
            torch.cuda.synchronize()
            dec = (time.time() - t0) / steps
            emit(check="speed_8b_bf16", context=n, prefill_s=round(pre, 3), decode_ms=round(dec * 1000, 2),
                 peak_gpu_gib=round(torch.cuda.max_memory_allocated() / 2**30, 1))
            del k, v


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path)
    ap.add_argument("--skip-8b", action="store_true")
    ap.add_argument("--skip-tiny", action="store_true")
    ap.add_argument("--contexts", default="8192,32768,131072")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    from s3export.verify import cuda_runtime_settings

    cuda_runtime_settings()  # what docs/model-format.md asks of a CUDA runtime
    emit(check="env", torch=torch.__version__, cuda=torch.cuda.is_available(),
         device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    if not a.skip_tiny:
        tiny_checks(a.work)
    if not a.skip_8b:
        big_checks(a.work, [int(x) for x in a.contexts.split(",") if x])
