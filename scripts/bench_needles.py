#!/usr/bin/env python3
"""Retrieval recall of planted facts ("needles") in a long haystack, per retrieval method (docs/needles.md).

    python3 scripts/bench_needles.py [--model models/default] [--sae MODEL/sae] [--data DATA_DIR]
        [--device cpu|cuda] [--needles N] [--haystack-tokens 12000] [--budget 1024]
        [--methods s3,bm25,s3-hybrid] [--index-args "..."] [--ask-args "..."]
        [--ask-variants "NAME=ARGS;NAME2=ARGS2"] [--control-question TEXT] [--jobs N] --out DIR

For each needle (the first N of NEEDLES): the first --haystack-tokens tokens of the Paul Graham
essays (counted with the model's tokenizer.json) with the needle sentence inserted at the sentence
boundary nearest to its depth (the N depths spread evenly over 5%..95%); one `s3attn index` of that
file; then `s3attn ask --evidence-only --json` for every (ask variant, method) on that index. A
needle is retrieved when its answer string is in the evidence text; it is covered when the evidence
ranges hold every token of the needle sentence. Every ask is repeated with an unrelated control
question (--control-question): how often its evidence holds the needle anyway is what position
alone retrieves. One JSON object goes to stdout and DIR/needles.json; the exact commands are in it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Needle:
    sentence: str
    question: str
    answer: str


# Synthetic facts; no answer string occurs in the essays (case-insensitive; tests check it).
NEEDLES = [
    Needle("The secret passphrase of the lighthouse keeper is marigold.",
           "What is the secret passphrase of the lighthouse keeper?", "marigold"),
    Needle("The expedition's ship was named the Silver Heron.",
           "What was the name of the expedition's ship?", "Silver Heron"),
    Needle("The vault beneath the old library opens with the code 7391.",
           "Which code opens the vault beneath the old library?", "7391"),
    Needle("Captain Orlov's favourite fruit is the quince.",
           "What is Captain Orlov's favourite fruit?", "quince"),
    Needle("The mascot of the Brackenford chess club is an axolotl.",
           "What is the mascot of the Brackenford chess club?", "axolotl"),
    Needle("The astronomer Ilse Vantongeren named the comet she discovered Zephyrine.",
           "What did the astronomer Ilse Vantongeren name the comet she discovered?", "Zephyrine"),
    Needle("Grandmother Pell's winter soup is always seasoned with cardamom.",
           "Which spice seasons Grandmother Pell's winter soup?", "cardamom"),
    Needle("The night train to Velmora departs from platform 14B.",
           "From which platform does the night train to Velmora depart?", "14B"),
    Needle("The password of the harbor office computer is kumquat.",
           "What is the password of the harbor office computer?", "kumquat"),
    Needle("The stolen museum painting was hidden inside a grandfather clock.",
           "Where was the stolen museum painting hidden?", "grandfather clock"),
    Needle("The rare orchid in the botanical greenhouse is called Celestine.",
           "What is the rare orchid in the botanical greenhouse called?", "Celestine"),
    Needle("Professor Halvorsen's pet tortoise is named Bartholomew.",
           "What is the name of Professor Halvorsen's pet tortoise?", "Bartholomew"),
    Needle("The pirate's treasure is buried under the old persimmon tree.",
           "Under which tree is the pirate's treasure buried?", "persimmon"),
    Needle("The robot that guards the factory gate is called Gizmotron.",
           "What is the robot that guards the factory gate called?", "Gizmotron"),
    Needle("The Kessington horse race was won by a mare named Thunderlark.",
           "What was the name of the mare that won the Kessington horse race?", "Thunderlark"),
    Needle("The secret ingredient of the village bakery's bread is smoked paprika.",
           "What is the secret ingredient of the village bakery's bread?", "paprika"),
    Needle("The submarine's emergency radio frequency is 482.7 megahertz.",
           "What is the submarine's emergency radio frequency?", "482.7"),
    Needle("The glassblower of Murnau makes vases only in turquoise.",
           "In which colour does the glassblower of Murnau make vases?", "turquoise"),
    Needle("The code name of the harbor project is Operation Bluefin.",
           "What is the code name of the harbor project?", "Bluefin"),
    Needle("The ghost of the castle plays the harpsichord at midnight.",
           "Which instrument does the ghost of the castle play at midnight?", "harpsichord"),
]

DEPTH_MIN, DEPTH_MAX = 0.05, 0.95
# About none of the needles: whatever its evidence holds of a needle was not chosen for the needle's content.
CONTROL_QUESTION = "What is the capital of France?"

# A sentence ends with . ! or ? (optionally a closing quote or bracket), then whitespace, then the
# next sentence starts with a capital letter (optionally after an opening quote or bracket).
_BOUNDARY = re.compile(r"[.!?][\"')\]]?\s+(?=[\"'(\[]?[A-Z])")


# ---------------------------------------------------------------- pure functions (unit-tested)

def needle_depths(n: int, lo: float = DEPTH_MIN, hi: float = DEPTH_MAX) -> list[float]:
    """n depths spread evenly over [lo, hi], in needle order (one needle: the middle)."""
    if n <= 0:
        return []
    if n == 1:
        return [(lo + hi) / 2]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def sentence_boundaries(text: str) -> list[int]:
    """Character positions where a sentence starts after an earlier one ended (ascending)."""
    return [m.end() for m in _BOUNDARY.finditer(text)]


def nearest_boundary(boundaries: list[int], pos: int) -> int:
    """The boundary closest to pos (the earlier one on a tie)."""
    if not boundaries:
        raise ValueError("the text has no sentence boundary")
    return min(boundaries, key=lambda b: (abs(b - pos), b))


def insert_needle(text: str, sentence: str, at: int) -> str:
    """text with `sentence` and one space inserted at character `at` (a sentence boundary)."""
    return text[:at] + sentence + " " + text[at:]


def place_needle(text: str, offsets: list[tuple[int, int]], sentence: str, depth: float) -> tuple[str, int]:
    """Inserts the sentence at the sentence boundary nearest to token `depth` x len(offsets) of text
    (offsets: each token's character range). Returns the new text and the sentence's first character."""
    if not 0.0 <= depth <= 1.0:
        raise ValueError(f"depth {depth} is outside [0, 1]")
    token = min(int(round(depth * len(offsets))), len(offsets) - 1)
    at = nearest_boundary(sentence_boundaries(text), offsets[token][0])
    return insert_needle(text, sentence, at), at


def token_span(offsets: list[tuple[int, int]], char_begin: int, char_end: int) -> tuple[int, int]:
    """Half-open range of the tokens whose characters overlap [char_begin, char_end)."""
    first = next(i for i, (s, e) in enumerate(offsets) if e > char_begin)
    last = max(i for i, (s, e) in enumerate(offsets) if s < char_end)
    return first, last + 1


def evidence_text(evidence: list[dict]) -> str:
    """Evidence texts in order; touching ranges (of any sources) run together, others get a newline."""
    text, last_end = "", None
    for e in evidence:
        text += ("" if e["start"] == last_end else "\n") + e["text"]
        last_end = e["end"]
    return text


def covered(evidence: list[dict], begin: int, end: int) -> bool:
    """Whether the evidence ranges together hold every position of [begin, end)."""
    need = set(range(begin, end))
    for e in evidence:
        need.difference_update(range(e["start"], e["end"]))
    return not need


def s3_spans_near(evidence: list[dict], begin: int, end: int, chunk: int) -> dict:
    """Where the S3 ranges of one answer went, relative to the needle's tokens [begin, end):
    rank (1-based, by score) of the best S3 range overlapping the needle, the distance from the
    needle's first token to the nearest S3 range start, the gap in tokens to the nearest S3 range
    (0 = overlap), and every S3 range with its offset inside its index chunk."""
    spans = sorted((e for e in evidence if e["source"] == "s3"), key=lambda e: (-e["score"], e["start"]))
    rank = next((i + 1 for i, e in enumerate(spans) if e["start"] < end and e["end"] > begin), None)
    gaps = [max(0, e["start"] - end, begin - e["end"]) for e in spans]
    return {
        "rank": rank,
        "nearest_start_distance": min((abs(e["start"] - begin) for e in spans), default=None),
        "gap": min(gaps, default=None),
        "spans": [{"start": e["start"], "end": e["end"], "score": round(float(e["score"]), 4),
                   "chunk_offset": e["start"] % chunk} for e in spans],
    }


def parse_variants(spec: str | None, base_args: str) -> dict[str, list[str]]:
    """'NAME=ARGS;NAME2=ARGS2' -> {NAME: base + ARGS}; without a spec, {'default': base}."""
    base = shlex.split(base_args or "")
    if not spec:
        return {"default": base}
    out: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, sep, args = part.partition("=")
        name = name.strip()
        if not sep or not name or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
            raise ValueError(f"--ask-variants: '{part}' is not NAME=ARGS (NAME of letters, digits, _.+-)")
        if name in out:
            raise ValueError(f"--ask-variants: '{name}' is given twice")
        out[name] = base + shlex.split(args)
    if not out:
        raise ValueError("--ask-variants names no variant")
    return out


def option_value(args: list[str], flag: str, default: int) -> int:
    """The integer value of `flag` in an argument list (`--flag V` or `--flag=V`), else default."""
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return int(args[i + 1])
        if a.startswith(flag + "="):
            return int(a.split("=", 1)[1])
    return default


# ---------------------------------------------------------------- haystack

class Haystacks:
    """The first `tokens` tokens of the essays and the tokenizer that counts them."""

    def __init__(self, essays: Path, tokenizer_json: Path, tokens: int):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(str(tokenizer_json))
        full = json.loads(essays.read_text())["text"]
        chars = tokens * 8
        while True:
            enc = self.tok.encode(full[:chars], add_special_tokens=False)
            if len(enc.ids) > tokens or chars >= len(full):
                break
            chars *= 2
        if len(enc.ids) < tokens:
            raise SystemExit(f"bench_needles: the essays have only {len(enc.ids)} tokens (< {tokens})")
        self.prefix = full[:chars]
        self.offsets = enc.offsets
        self.tokens = tokens

    def offsets_of(self, text: str) -> list[tuple[int, int]]:
        return self.tok.encode(text, add_special_tokens=False).offsets

    def build(self, needle: Needle, depth: float) -> dict:
        """The haystack text with the needle, its token count and the needle's token range."""
        needle_tokens = len(self.offsets_of(" " + needle.sentence))
        keep = self.tokens - needle_tokens
        base = self.prefix[:self.offsets[keep - 1][1]]
        if needle.answer.lower() in base.lower():
            raise SystemExit(f"bench_needles: the answer '{needle.answer}' occurs in the haystack itself")
        text, at = place_needle(base, self.offsets[:keep], needle.sentence, depth)
        offsets = self.offsets_of(text)
        begin, end = token_span(offsets, at, at + len(needle.sentence))
        return {"text": text, "char": at, "tokens": len(offsets), "begin": begin, "end": end,
                "depth": begin / len(offsets)}


# ---------------------------------------------------------------- runs

class Runner:
    def __init__(self, commands: list[str]):
        self.commands = commands

    def json(self, cmd: list[str]) -> tuple[dict, float]:
        line = shlex.join(cmd)
        self.commands.append(line)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"bench_needles: `{line}` exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return json.loads(proc.stdout), wall


def mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def median(values: list[float]) -> float:
    v = sorted(values)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=Path(os.environ.get("S3ATTN_BIN", REPO / "build" / "s3attn")))
    p.add_argument("--model", type=Path, default=REPO / "models" / "default")
    p.add_argument("--sae", type=Path, default=None, help="default: MODEL/sae")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("S3ATTN_DATA", REPO.parent / "shared" / "data")))
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (index, and ask unless --ask-device)")
    p.add_argument("--ask-device", default=None, help="device of s3attn ask (default: --device)")
    p.add_argument("--jobs", type=int, default=1, help="needles run side by side (each: its index, then its asks)")
    p.add_argument("--budget", type=int, default=1024)
    p.add_argument("--needles", type=int, default=len(NEEDLES), help=f"the first N needles (at most {len(NEEDLES)})")
    p.add_argument("--haystack-tokens", type=int, default=12000)
    p.add_argument("--methods", default="s3,bm25,s3-hybrid")
    p.add_argument("--index-args", default="", help="extra arguments of s3attn index (one string)")
    p.add_argument("--ask-args", default="", help="extra arguments of every s3attn ask (one string)")
    p.add_argument("--ask-variants", default=None,
                   help="'NAME=ARGS;NAME2=ARGS2': ask settings evaluated on the same indexes "
                        "(each added to --ask-args; 'base=' is a variant with no extra arguments)")
    p.add_argument("--control-question", default=CONTROL_QUESTION,
                   help="also ask every (variant, method) this unrelated question and report how often its "
                        "evidence holds the needle anyway (control_recall: what position alone retrieves); "
                        "'' = off")
    p.add_argument("--keep-indexes", action="store_true", help="keep OUT/needle_NN/index")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if not 1 <= args.needles <= len(NEEDLES):
        p.error(f"--needles must be in 1..{len(NEEDLES)}")
    if args.haystack_tokens < 200:
        p.error("--haystack-tokens must be at least 200")
    args.sae = args.sae or args.model / "sae"
    args.ask_device = args.ask_device or args.device
    if args.budget >= args.haystack_tokens:
        print(f"bench_needles: warning: the budget ({args.budget}) holds the whole haystack "
              f"({args.haystack_tokens} tokens): every method retrieves every needle", file=sys.stderr)
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        args.variants = parse_variants(args.ask_variants, args.ask_args)
    except ValueError as e:
        p.error(str(e))
    return args


def run_needle(args: argparse.Namespace, i: int, needle: Needle, hay: dict, chunk: int) -> tuple[dict, list[str]]:
    """Indexes one haystack, asks every (variant, method); returns the needle's row and its commands."""
    commands: list[str] = []
    run = Runner(commands)
    work = args.out / f"needle_{i:02d}"
    index_dir = work / "index"
    summary, wall = run.json([str(args.binary), "index", "--model", str(args.model), "--sae", str(args.sae),
                              "--input", str(work / "haystack.txt"), "--out", str(index_dir), "--overwrite",
                              "--device", args.device, "--json", *shlex.split(args.index_args)])
    if summary["tokens"] != hay["tokens"]:
        print(f"bench_needles: warning: the index has {summary['tokens']} tokens, the tokenizer counted "
              f"{hay['tokens']}; needle positions may be off", file=sys.stderr)
    row = {"needle": i, "question": needle.question, "answer": needle.answer, "depth_target": round(hay["target"], 4),
           "depth": round(hay["depth"], 4), "needle_tokens": [hay["begin"], hay["end"]],
           "haystack_tokens": hay["tokens"],
           "index": {k: summary.get(k) for k in ("tokens", "file_bytes", "posting_bytes", "postings",
                                                 "bytes_per_posting", "scan_s", "tokens_per_s")},
           "index_wall_s": round(wall, 3), "results": {}}
    for vname, vargs in args.variants.items():
        row["results"][vname] = {}
        for method in args.methods:
            out, wall = run.json([str(args.binary), "ask", "--index", str(index_dir), "--question",
                                  needle.question, "--method", method, "--budget", str(args.budget),
                                  "--device", args.ask_device, "--evidence-only", "--json", *vargs])
            ev = out["evidence"]
            t = out.get("timings", {})
            r = t.get("retrieval", {})
            res = {"retrieved": needle.answer.lower() in evidence_text(ev).lower(),
                   "covered": covered(ev, hay["begin"], hay["end"]),
                   "evidence_tokens": out.get("evidence_tokens"),
                   "tokens_by_source": {}, "ask_ms": round(1000 * t.get("ask_s", 0.0), 3),
                   "encode_query_ms": round(1000 * t.get("encode_query_s", 0.0), 3),
                   "retrieval_ms": round(sum(r.get(k, 0.0) for k in ("score_ms", "spans_ms", "bm25_ms",
                                                                    "pack_ms")), 4),
                   "wall_s": round(wall, 3)}
            for e in ev:
                res["tokens_by_source"][e["source"]] = res["tokens_by_source"].get(e["source"], 0) + \
                    e["end"] - e["start"]
            if any(e["source"] == "s3" for e in ev):
                res["s3"] = s3_spans_near(ev, hay["begin"], hay["end"], chunk)
            if args.control_question:
                # The same ask with a question about something else: what position alone retrieves.
                ctl, _ = run.json([str(args.binary), "ask", "--index", str(index_dir), "--question",
                                   args.control_question, "--method", method, "--budget", str(args.budget),
                                   "--device", args.ask_device, "--evidence-only", "--json", *vargs])
                res["control_retrieved"] = needle.answer.lower() in evidence_text(ctl["evidence"]).lower()
                res["control_covered"] = covered(ctl["evidence"], hay["begin"], hay["end"])
            row["results"][vname][method] = res
    print(f"bench_needles: needle {i} depth {row['depth']:.2f}: " + ", ".join(
        f"{v}/{m} {'yes' if row['results'][v][m]['retrieved'] else 'no'}"
        for v in args.variants for m in args.methods), file=sys.stderr)
    if not args.keep_indexes:
        shutil.rmtree(index_dir)
    return row, commands


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    t_start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    index_args = shlex.split(args.index_args)
    chunk = option_value(index_args, "--chunk", 4096)
    stacks = Haystacks(args.data / "haystack" / "PaulGrahamEssays.json", args.model / "tokenizer.json",
                       args.haystack_tokens)
    needles = NEEDLES[:args.needles]
    hays = []
    for i, (needle, depth) in enumerate(zip(needles, needle_depths(len(needles)))):
        hay = stacks.build(needle, depth)
        hay["target"] = depth
        work = args.out / f"needle_{i:02d}"
        work.mkdir(parents=True, exist_ok=True)
        (work / "haystack.txt").write_text(hay["text"])
        hays.append(hay)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = list(pool.map(lambda a: run_needle(args, a[0], a[1], a[2], chunk),
                             [(i, n, h) for i, (n, h) in enumerate(zip(needles, hays))]))
    rows = [row for row, _ in done]
    commands = [c for _, cmds in done for c in cmds]

    n = len(rows)
    recall, coverage, control, timing, s3_where = {}, {}, {}, {}, {}
    for v in args.variants:
        recall[v], coverage[v], timing[v], s3_where[v] = {}, {}, {}, {}
        for m in args.methods:
            res = [row["results"][v][m] for row in rows]
            recall[v][m] = sum(r["retrieved"] for r in res) / n
            coverage[v][m] = sum(r["covered"] for r in res) / n
            if args.control_question:
                control.setdefault(v, {})[m] = sum(r["control_retrieved"] for r in res) / n
            timing[v][m] = {"ask_ms_mean": round(mean([r["ask_ms"] for r in res]), 3),
                            "encode_query_ms_mean": round(mean([r["encode_query_ms"] for r in res]), 3),
                            "retrieval_ms_mean": round(mean([r["retrieval_ms"] for r in res]), 4)}
            with_s3 = [r["s3"] for r in res if "s3" in r]
            spans = [s for r in with_s3 for s in r["spans"]]
            if spans:
                s3_where[v][m] = {
                    "answers_with_s3": len(with_s3),
                    "spans": len(spans),
                    "needle_overlapped": sum(1 for r in with_s3 if r["rank"] is not None),
                    "median_gap_tokens": median([r["gap"] for r in with_s3]),
                    "share_starting_in_chunk_head": round(sum(s["chunk_offset"] < 256 for s in spans) / len(spans), 4),
                    "share_starting_in_first_1024": round(sum(s["start"] < 1024 for s in spans) / len(spans), 4)}
    tokens = sum(r["index"]["tokens"] for r in rows)
    result = {
        "benchmark": "needles",
        "command": shlex.join([sys.executable, str(Path(__file__)), *(argv if argv is not None else sys.argv[1:])]),
        "config": {"binary": str(args.binary), "model": str(args.model), "sae": str(args.sae), "data": str(args.data),
                   "device": args.device, "ask_device": args.ask_device, "jobs": args.jobs, "budget": args.budget, "needles": n,
                   "haystack_tokens": args.haystack_tokens, "methods": args.methods, "index_args": index_args,
                   "ask_args": shlex.split(args.ask_args), "variants": args.variants, "chunk": chunk,
                   "control_question": args.control_question},
        "recall": recall,
        "covered": coverage,
        "control_recall": control or None,
        "retrieval_time": timing,
        "s3_spans": s3_where,
        "index": {"tokens": tokens, "file_bytes_mean": mean([r["index"]["file_bytes"] for r in rows]),
                  "postings_mean": mean([r["index"]["postings"] for r in rows]),
                  "bytes_per_token": sum(r["index"]["file_bytes"] for r in rows) / tokens,
                  "postings_per_token": sum(r["index"]["postings"] for r in rows) / tokens,
                  "scan_tokens_per_s": tokens / sum(r["index"]["scan_s"] for r in rows)},
        "rows": rows,
        "commands": commands,
        "seconds": round(time.perf_counter() - t_start, 2),
    }
    (args.out / "needles.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
