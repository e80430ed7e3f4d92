"""`s3attn index` sharded the way torchrun and srun start it (docs/scale-out.md): 2 and 4 processes
given RANK / WORLD_SIZE / LOCAL_RANK (or SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID) index the same
input as one process, several documents or one long document split by chunks, and rank 0's merge is
the single-process index file for file; a rank killed mid-scan is run again and the result is still
identical; parts of another build are refused with one clear error."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s3attn_testing import assert_one_line_error, make_text, REPO, run_s3attn, s3attn_binary

LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")


@pytest.fixture(scope="module")
def sae(tiny_export, tmp_path_factory) -> Path:
    return make_sae(tiny_export, tmp_path_factory.mktemp("sae") / "sae", seed=0)


def make_sae(model: Path, out: Path, seed: int) -> Path:
    meta = json.loads((model / "model.json").read_text())
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_random_sae.py"), "--model", str(model),
                    "--layers", ",".join(map(str, meta["default_taps"])), "--latents", "256", "--k", "8",
                    "--dtype", "float32", "--seed", str(seed), "--out", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    """Several documents of different sizes (a directory), and one long document (a file)."""
    root = tmp_path_factory.mktemp("corpora")
    many = root / "many"
    many.mkdir()
    for i, sentences in enumerate((3, 40, 1, 90, 12, 25)):
        (many / f"doc{i}.txt").write_text(make_text(i, sentences))
    long = root / "long.txt"
    long.write_text(make_text(99, 160))
    return {"many": many, "long": long}


def index_args(model: Path, sae: Path, source: Path, out: Path, *extra, chunk: int = 64) -> list[str]:
    return [str(s3attn_binary()), "index", "--model", str(model), "--sae", str(sae), "--input", str(source),
            "--chunk", str(chunk), "--passage-words", "20", "--out", str(out), "--json", *map(str, extra)]


def run_single(args: list[str]) -> None:
    """One process, with no launcher variables set."""
    proc = subprocess.run(args, env=launch_env(0, 1), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def launch_env(rank: int, world: int, launcher: str = "torchrun") -> dict[str, str]:
    # One intra-op thread per process, as torchrun sets it: W processes on 2 cores otherwise spin.
    # Every run of a test uses it, so the forwards compute the same numbers in every process.
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES} | {"OMP_NUM_THREADS": "1"}
    if world == 1:
        return env
    if launcher == "torchrun":
        env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    else:
        env.update(SLURM_PROCID=str(rank), SLURM_NTASKS=str(world), SLURM_LOCALID=str(rank % 2))
    return env


def start_rank(args: list[str], rank: int, world: int, launcher: str = "torchrun") -> subprocess.Popen:
    return subprocess.Popen(args, env=launch_env(rank, world, launcher), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_job(args: list[str], world: int, launcher: str = "torchrun") -> list[dict]:
    """Every rank with the same command line, at once, as the launchers start them; their summaries."""
    procs = [start_rank(args, rank, world, launcher) for rank in range(world)]
    summaries = []
    for rank, proc in enumerate(procs):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"rank {rank} exited {proc.returncode}: {err}"
        summaries.append(json.loads(out))
    return summaries


def files(index: Path) -> dict[str, bytes]:
    return {str(p.relative_to(index)): p.read_bytes() for p in sorted(index.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def assert_same_index(got: Path, want: Path) -> None:
    a, b = files(got), files(want)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], f"{name} differs from the single-process index"


@pytest.fixture(scope="module")
def single(tiny_export, sae, corpora, tmp_path_factory) -> dict[str, Path]:
    """The single-process index of each corpus: the reference."""
    root = tmp_path_factory.mktemp("single")
    out = {}
    for name, source in corpora.items():
        out[name] = root / name
        run_single(index_args(tiny_export, sae, source, out[name]))
    return out


@pytest.mark.parametrize("corpus,world,launcher", [("many", 2, "torchrun"), ("many", 4, "slurm"),
                                                   ("long", 2, "slurm"), ("long", 4, "torchrun")])
def test_ranks_merge_into_the_single_process_index(tiny_export, sae, corpora, single, tmp_path, corpus, world,
                                                   launcher):
    out = tmp_path / "index"
    summaries = run_job(index_args(tiny_export, sae, corpora[corpus], out), world, launcher)
    assert_same_index(out, single[corpus])
    # Every rank scanned a share (the long document too: split by chunks), together each token once.
    reference = json.loads((single[corpus] / "manifest.json").read_text())["totals"]["tokens"]
    assert [s["rank"] for s in summaries] == list(range(world))
    assert all(s["tokens"] > 0 and not s["reused"] for s in summaries)
    assert sum(s["tokens"] for s in summaries) == reference
    assert summaries[0]["merge"]["parts"] == world and summaries[0]["merge"]["tokens"] == reference
    # The parts are gone once merged; nothing else is left beside the index.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_more_ranks_than_chunks(tiny_export, sae, tmp_path):
    """Ranks without a chunk of their own write a part without postings; the merge is still exact."""
    source = tmp_path / "short.txt"
    source.write_text(make_text(5, 4))
    run_single(index_args(tiny_export, sae, source, tmp_path / "single", chunk=255))
    summaries = run_job(index_args(tiny_export, sae, source, tmp_path / "index", chunk=255), 4)
    assert [s["tokens"] for s in summaries].count(0) == 3
    assert_same_index(tmp_path / "index", tmp_path / "single")


def kill_mid_scan(args: list[str], rank: int, world: int) -> None:
    """Starts one rank and SIGKILLs it once its scan is under way (its first progress line)."""
    proc = start_rank(args, rank, world)
    for line in proc.stderr:
        if f"index [{rank}/{world}]" in line:
            proc.send_signal(signal.SIGSTOP)
            break
    else:
        pytest.fail(f"rank {rank} printed no progress: {proc.communicate()}")
    proc.kill()
    proc.communicate()


def test_a_killed_rank_is_run_again(tiny_export, sae, corpora, tmp_path):
    # Many small chunks: the scan takes long enough to be caught in the middle.
    args = index_args(tiny_export, sae, corpora["long"], tmp_path / "index", "--keep-parts", chunk=16)
    reference = tmp_path / "single"
    run_single(index_args(tiny_export, sae, corpora["long"], reference, chunk=16))
    part1 = tmp_path / "index.part-1-of-2"
    kill_mid_scan(args, 1, 2)
    assert not part1.exists()
    # Rank 0 alone commits its part, waits for rank 1's, and gives up naming it.
    proc = subprocess.run([*args, "--merge-timeout", "2"], env=launch_env(0, 2), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]  # after the progress lines
    assert last.startswith("error: gave up after") and "Traceback" not in proc.stderr, proc.stderr
    for needle in ("waiting for 1 of 2 parts", str(part1), "run those ranks again"):
        assert needle in last, last
    assert (tmp_path / "index.part-0-of-2" / "manifest.json").exists() and not (tmp_path / "index").exists()
    # The whole job again: rank 0 keeps its part, rank 1 scans (over the killed run's leftovers).
    summaries = run_job(args, 2)
    assert summaries[0]["reused"] is True and summaries[1]["reused"] is False
    assert_same_index(tmp_path / "index", reference)
    # Kept parts merge again with `s3attn merge`, in any order, to the same index.
    merged = run_s3attn("merge", "--out", tmp_path / "again", part1, tmp_path / "index.part-0-of-2", "--json")
    assert json.loads(merged.stdout)["parts"] == 2
    assert_same_index(tmp_path / "again", reference)
    # Rank 1 alone again (--overwrite: the merged index exists), its part there: nothing to scan.
    proc = subprocess.run([*args, "--overwrite"], env=launch_env(1, 2), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reused"] is True


def test_parts_of_another_build_are_refused(tiny_export, sae, corpora, tmp_path):
    source = corpora["many"]
    out = tmp_path / "index"
    base = index_args(tiny_export, sae, source, out, "--no-merge")
    for rank, chunk in ((0, 64), (1, 32)):
        proc = subprocess.run(index_args(tiny_export, sae, source, out, "--no-merge", chunk=chunk),
                              env=launch_env(rank, 2), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    parts = [tmp_path / f"index.part-{r}-of-2" for r in (0, 1)]
    proc = run_s3attn("merge", "--out", out, *parts, check=False)
    assert_one_line_error(proc, 1, "not parts of one build", "metadata.scan.chunk", "64", "32")
    assert not out.exists()
    # A part of another SAE.
    other_sae = make_sae(tiny_export, tmp_path / "sae2", seed=1)
    subprocess.run(index_args(tiny_export, other_sae, source, tmp_path / "other", "--no-merge"),
                   env=launch_env(1, 2), check=True, capture_output=True)
    proc = run_s3attn("merge", "--out", out, parts[0], tmp_path / "other.part-1-of-2", check=False)
    assert_one_line_error(proc, 1, "not parts of one build", "sae_fingerprint")
    # A part of other input.
    subprocess.run(index_args(tiny_export, sae, corpora["long"], tmp_path / "input", "--no-merge"),
                   env=launch_env(1, 2), check=True, capture_output=True)
    proc = run_s3attn("merge", "--out", out, parts[0], tmp_path / "input.part-1-of-2", check=False)
    assert_one_line_error(proc, 1, "not parts of one build", "part.input")
    # A part missing, and an ordinary index given as a part.
    proc = run_s3attn("merge", "--out", out, parts[0], check=False)
    assert_one_line_error(proc, 1, "1 of the 2 parts missing", str(parts[1]))
    single_out = tmp_path / "single"
    run_single(index_args(tiny_export, sae, source, single_out))
    proc = run_s3attn("merge", "--out", out, single_out, check=False)
    assert_one_line_error(proc, 1, "is not a part of a sharded build")
    # A rank finding another build's part where its own goes: refused unless --overwrite.
    proc = subprocess.run(base, env=launch_env(1, 2), capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, 1, str(parts[1]), "is not this build's part", "scan.chunk", "--overwrite")
    proc = subprocess.run([*base, "--overwrite"], env=launch_env(1, 2), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    merged = run_s3attn("merge", "--out", out, *parts, "--json")
    assert json.loads(merged.stdout)["parts"] == 2
    # Bad launcher variables are usage errors naming the variable.
    env = launch_env(0, 2) | {"RANK": "2"}
    proc = subprocess.run(base, env=env, capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, 2, "RANK=2 must be below WORLD_SIZE=2")


@pytest.mark.parametrize("variables,needle", [
    ({"RANK": "1"}, "set both RANK and WORLD_SIZE (or neither)"),
    ({"SLURM_NTASKS": "2"}, "set both SLURM_PROCID and SLURM_NTASKS (or neither)"),
    ({"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE=0 must be at least 1"),
    ({"SLURM_PROCID": "2", "SLURM_NTASKS": "2"}, "SLURM_PROCID=2 must be below SLURM_NTASKS=2"),
    ({"RANK": "one", "WORLD_SIZE": "2"}, "RANK=one is not a valid number"),
    ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "-1"}, "LOCAL_RANK=-1 is not a valid number"),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_LOCALID": "x"}, "SLURM_LOCALID=x is not a valid number"),
])
def test_bad_launcher_variables_are_one_usage_error(tiny_export, sae, corpora, tmp_path, variables, needle):
    """A bad RANK / WORLD_SIZE / LOCAL_RANK or SLURM_* value: exit 2, one line naming it, nothing written."""
    out = tmp_path / "index"
    env = launch_env(0, 1) | variables
    proc = subprocess.run(index_args(tiny_export, sae, corpora["many"], out), env=env, capture_output=True,
                          text=True, timeout=300)
    assert_one_line_error(proc, 2, needle)
    assert list(tmp_path.iterdir()) == []


def test_merge_refuses_a_damaged_part_and_leaves_the_output_alone(tiny_export, sae, corpora, tmp_path):
    """`s3attn merge --overwrite` over an existing index, one part damaged: exit 1, one line naming the part,
    the existing index unchanged; its rank run again rebuilds it, and the parts merge to the single index."""
    source = corpora["many"]
    out = tmp_path / "index"
    run_job(index_args(tiny_export, sae, source, out, "--no-merge"), 2)
    parts = [tmp_path / f"index.part-{r}-of-2" for r in (0, 1)]
    run_single(index_args(tiny_export, sae, corpora["long"], out))  # another index already at --out
    before = files(out)
    good = files(parts[1])
    name = max((n for n in good if n != "manifest.json"), key=lambda n: len(good[n]))
    data = bytearray(good[name])
    data[len(data) // 2] ^= 0x10
    (parts[1] / name).write_bytes(bytes(data))
    proc = run_s3attn("merge", "--out", out, "--overwrite", *parts, check=False)
    assert_one_line_error(proc, 1, "checksum mismatch", f"the part {parts[1]} is damaged",
                          "run the rank that wrote it again with --overwrite")
    assert files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", *(p.name for p in parts)]
    # Run again, that rank checks its part's checksums: it scans again instead of keeping it.
    proc = subprocess.run(index_args(tiny_export, sae, source, out, "--no-merge", "--overwrite"),
                          env=launch_env(1, 2), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reused"] is False
    assert files(parts[1]) == good
    run_s3attn("merge", "--out", out, "--overwrite", *parts)
    reference = tmp_path / "single"
    run_single(index_args(tiny_export, sae, source, reference))
    assert_same_index(out, reference)
