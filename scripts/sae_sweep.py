#!/usr/bin/env python3
"""Chooses an SAE configuration (latents, k, tapped layers) by measurement (docs/sae.md §11).

    python3 scripts/sae_sweep.py --latents 2048,4096,8192 --k 16,32,64 \
        --layers-sets "0,11,15,27;3,11,19,27" [--device cuda] [--steps 700] [--batch 1024] \
        [--needles 8] [--haystack-tokens 8000] --out OUT_DIR

For every (latents, k, layer set) of the grid: `s3attn sae train` on WikiText-2 (the committed
default SAE's recipe, docs/sae.md §10, with --steps/--batch/--lr as given), `s3attn sae eval --json`
on held-out text (characters 1,000,000-1,200,000 of the Paul Graham essays, as §10), and
scripts/bench_needles.py with the new SAE. One JSON row per configuration goes to stdout and is
appended to OUT_DIR/sweep.jsonl as soon as it is measured; configurations already in that file
(same latents, k, layers, steps, batch, lr, device and needle settings) are skipped, so an
interrupted sweep continues where it stopped.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from provenance import stamp

REPO = Path(__file__).resolve().parents[1]
HELDOUT_CHARS = (1_000_000, 1_200_000)


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.replace(" ", "").split(",") if x]


def layer_sets(text: str) -> list[list[int]]:
    """'0,11,15,27;3,11,19,27' -> [[0, 11, 15, 27], [3, 11, 19, 27]] (each ascending, no repeats)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        layers = int_list(part)
        if not layers or len(set(layers)) != len(layers) or min(layers) < 0:
            raise ValueError(f"--layers-sets: '{part}' is not a list of distinct layers")
        out.append(sorted(layers))
    if not out:
        raise ValueError("--layers-sets names no layer set")
    return out


def grid(latents: list[int], ks: list[int], sets: list[list[int]]) -> list[dict]:
    """The configurations in order (layer set, then latents, then k); k > latents is left out."""
    return [{"latents": f, "k": k, "layers": layers}
            for layers, f, k in itertools.product(sets, latents, ks) if 0 < k <= f]


def config_key(row: dict) -> tuple:
    """What makes two rows the same measurement (for skipping what a rows file already holds)."""
    return (row["latents"], row["k"], tuple(row["layers"]), row["steps"], row["batch"], row["lr"], row["device"],
            row["needles"], row["haystack_tokens"], row["budget"])


def per_layer(summary: dict, field: str) -> dict[str, float | None]:
    return {layer: values.get(field) for layer, values in summary.get("layers", {}).items()}


def mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def run_json(cmd: list[str], commands: list[str], env: dict | None = None) -> tuple[dict, float]:
    line = shlex.join(cmd)
    commands.append(line)
    print(f"sae_sweep: {line}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sae_sweep: `{line}` exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=Path(os.environ.get("S3ATTN_BIN", REPO / "build" / "s3attn")))
    p.add_argument("--python", default=sys.executable, help="python that runs bench_needles.py")
    p.add_argument("--model", type=Path, default=REPO / "models" / "default")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("S3ATTN_DATA", REPO.parent / "shared" / "data")))
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (training, evaluation, indexing)")
    p.add_argument("--latents", default="2048,4096,8192")
    p.add_argument("--k", default="16,32,64")
    p.add_argument("--layers-sets", default=None, help="'0,11,15,27;3,11,19,27' (default: the model's default taps)")
    p.add_argument("--steps", type=int, default=700, help="optimizer steps (the default SAE's recipe: 700)")
    p.add_argument("--batch", type=int, default=1024, help="vectors per step (the default SAE's recipe: 1024)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--corpus", type=Path, default=None,
                   help="training corpus (default: DATA/corpora/wikitext-2-v1_test.jsonl, field 'content')")
    p.add_argument("--doc-field", default="content", help="JSONL field of --corpus")
    p.add_argument("--train-args", default="", help="extra arguments of s3attn sae train (one string)")
    p.add_argument("--sae-dtype", default="bfloat16", help="dtype of the saved SAE weights (the default SAE's: bfloat16)")
    p.add_argument("--eval-tokens", type=int, default=16384, help="held-out tokens of sae eval")
    p.add_argument("--needles", type=int, default=8, help="the first N needles of bench_needles.py")
    p.add_argument("--haystack-tokens", type=int, default=8000)
    p.add_argument("--budget", type=int, default=1024)
    p.add_argument("--methods", default="s3,bm25,s3-hybrid")
    p.add_argument("--bench-args", default="", help="extra arguments of bench_needles.py (one string), e.g. "
                                                    "\"--jobs 8 --ask-variants 'base=;cap64=--max-query-features 64'\"")
    p.add_argument("--keep-saes", action="store_true", help="keep each configuration's SAE in OUT/<config>/sae")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--rows", type=Path, default=None, help="rows file (default: OUT/sweep.jsonl)")
    args = p.parse_args(argv)
    try:
        args.latents = int_list(args.latents)
        args.k = int_list(args.k)
        if args.layers_sets is None:
            args.layer_sets = [json.loads((args.model / "model.json").read_text())["default_taps"]]
        else:
            args.layer_sets = layer_sets(args.layers_sets)
    except ValueError as e:
        p.error(str(e))
    if not args.latents or not args.k:
        p.error("--latents and --k need at least one value each")
    if args.steps < 1 or args.batch < 1:
        p.error("--steps and --batch must be positive")
    args.corpus = args.corpus or args.data / "corpora" / "wikitext-2-v1_test.jsonl"
    args.rows = args.rows or args.out / "sweep.jsonl"
    return args


def heldout_file(args: argparse.Namespace) -> Path:
    path = args.out / "heldout_pg.txt"
    if not path.exists():
        text = json.loads((args.data / "haystack" / "PaulGrahamEssays.json").read_text())["text"]
        path.write_text(text[HELDOUT_CHARS[0]:HELDOUT_CHARS[1]])
    return path


def measure(args: argparse.Namespace, cfg: dict, heldout: Path) -> dict:
    name = f"L{cfg['latents']}_k{cfg['k']}_t{'-'.join(map(str, cfg['layers']))}"
    work = args.out / name
    sae = work / "sae"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    commands: list[str] = []
    train, train_wall = run_json([str(args.binary), "sae", "train", "--model", str(args.model),
                                  "--corpus", str(args.corpus), "--doc-field", args.doc_field,
                                  "--layers", ",".join(map(str, cfg["layers"])), "--latents", str(cfg["latents"]),
                                  "--k", str(cfg["k"]), "--steps", str(args.steps), "--batch", str(args.batch),
                                  "--lr", str(args.lr), "--save-dtype", args.sae_dtype, "--device", args.device,
                                  "--checkpoint-every", "0", "--out", str(sae), "--json",
                                  *shlex.split(args.train_args)], commands)
    shutil.rmtree(sae / "checkpoint", ignore_errors=True)
    ev, eval_wall = run_json([str(args.binary), "sae", "eval", "--model", str(args.model), "--sae", str(sae),
                              "--corpus", str(heldout), "--max-tokens", str(args.eval_tokens),
                              "--device", args.device, "--json"], commands)
    bench, bench_wall = run_json([args.python, str(REPO / "scripts" / "bench_needles.py"), "--binary", str(args.binary),
                                  "--model", str(args.model), "--sae", str(sae), "--data", str(args.data),
                                  "--device", args.device, "--needles", str(args.needles),
                                  "--haystack-tokens", str(args.haystack_tokens), "--budget", str(args.budget),
                                  "--methods", args.methods, "--out", str(work / "needles"),
                                  *shlex.split(args.bench_args)], commands)
    variants = list(bench["recall"])
    first = variants[0]
    fvu_keys, fvu_queries, dead = (per_layer(ev, f) for f in ("fvu_keys", "fvu_queries", "dead_fraction"))
    row = {
        "latents": cfg["latents"], "k": cfg["k"], "layers": cfg["layers"],
        "steps": args.steps, "batch": args.batch, "lr": args.lr, "device": args.device,
        "needles": args.needles, "haystack_tokens": args.haystack_tokens, "budget": args.budget,
        "train_seconds": train.get("seconds"), "train_wall_s": round(train_wall, 2),
        "train_vectors_per_s": train.get("vectors_per_s"),
        "train_tokens": train.get("tokens"), "train_vectors": train.get("vectors"),
        "train_fvu": per_layer(train, "fvu"), "train_dead_fraction": per_layer(train, "dead_fraction"),
        "fvu_keys": fvu_keys, "fvu_queries": fvu_queries, "dead_fraction": dead,
        "dead_fraction_queries": {layer: v.get("dead_fraction") for layer, v in ev.get("queries", {}).items()},
        "l0": per_layer(ev, "l0"),
        "fvu_keys_mean": mean(fvu_keys.values()), "fvu_queries_mean": mean(fvu_queries.values()),
        "dead_fraction_mean": mean(dead.values()),
        "eval_tokens": ev.get("tokens"), "eval_wall_s": round(eval_wall, 2),
        "recall": bench["recall"][first], "covered": bench["covered"][first],
        "recall_by_variant": bench["recall"] if len(variants) > 1 else None,
        "control_recall": (bench.get("control_recall") or {}).get(first),
        "index_bytes_per_token": bench["index"]["bytes_per_token"],
        "postings_per_token": bench["index"]["postings_per_token"],
        "scan_tokens_per_s": bench["index"]["scan_tokens_per_s"],
        "retrieval_ms": {m: t["retrieval_ms_mean"] for m, t in bench["retrieval_time"][first].items()},
        "encode_query_ms": {m: t["encode_query_ms_mean"] for m, t in bench["retrieval_time"][first].items()},
        "s3_spans": bench["s3_spans"].get(first, {}),
        "bench_wall_s": round(bench_wall, 2),
        "needles_json": str(work / "needles" / "needles.json"),
        "commands": commands,
    }
    if not args.keep_saes:
        shutil.rmtree(sae)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    done = set()
    if args.rows.exists():
        for line in args.rows.read_text().splitlines():
            if line.strip():
                done.add(config_key(json.loads(line)))
    heldout = heldout_file(args)
    common = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "device": args.device,
              "needles": args.needles, "haystack_tokens": args.haystack_tokens, "budget": args.budget}
    rows = []
    for cfg in grid(args.latents, args.k, args.layer_sets):
        if config_key({**cfg, **common}) in done:
            print(f"sae_sweep: {cfg} is already in {args.rows}", file=sys.stderr)
            continue
        row = {**measure(args, cfg, heldout), **stamp(args.binary, args.device)}
        print(json.dumps(row), flush=True)
        with args.rows.open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
