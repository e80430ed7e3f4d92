"""CUDA-graph decoding (core/runtime/decode_graph.h) against step-by-step decoding, on every tiny family, in
float32 (the step-by-step path is compared with transformers by tests/cli/test_parity.py; on the
GPU, transformers' own generate can pick another token at near-ties of these random models' logits).
Needs a CUDA device: skipped elsewhere (run on a GPU machine, docs/performance.md)."""
import pytest
import torch

from s3attn_testing import run_json

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

PROMPT = "The quick brown fox jumps over the lazy dog because"


def generate(model_dir, *extra):
    return run_json("generate", "--model", model_dir, "--prompt", PROMPT, "--max-new-tokens", "48",
                    "--ignore-stop", "--device", "cuda", "--dtype", "float32", "--json", *extra)


def test_graph_decode_matches_step_by_step(family_export):
    family, _, model_dir = family_export
    graph = generate(model_dir)
    eager = generate(model_dir, "--no-cuda-graph")
    assert graph["tokens"] == eager["tokens"], family
    assert len(graph["tokens"]) == 48


def test_graph_decode_stops_at_a_stop_token(family_export):
    _, _, model_dir = family_export
    free = generate(model_dir)["tokens"]
    stopped = run_json("generate", "--model", model_dir, "--prompt", PROMPT, "--max-new-tokens", "48",
                       "--device", "cuda", "--dtype", "float32", "--json")
    eager = run_json("generate", "--model", model_dir, "--prompt", PROMPT, "--max-new-tokens", "48",
                     "--device", "cuda", "--dtype", "float32", "--json", "--no-cuda-graph")
    assert stopped["tokens"] == eager["tokens"]
    assert stopped["tokens"] == free[:len(stopped["tokens"])]
