"""`s3attn generate --batch N`: N rows of the same prompt decoded as one batch (on CUDA one batched
CUDA graph, core/runtime/decode_graph.h; on the CPU row after row). Every row gives the tokens of
the one-row generation, and the timings count every row's tokens. Runs on the CPU with every tiny
family; the CUDA case is skipped without a device."""
import pytest
import torch

from s3attn_testing import assert_one_line_error, run_json, run_s3attn

PROMPT = "The quick brown fox jumps over the lazy dog because"


def generate(model_dir, device, *extra):
    dtype = ["--dtype", "float32"]
    return run_json("generate", "--model", model_dir, "--prompt", PROMPT, "--max-new-tokens", "12",
                    "--ignore-stop", "--device", device, *dtype, "--json", *extra)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_every_row_decodes_the_one_row_tokens(family_export, device):
    family, _, model_dir = family_export
    one = generate(model_dir, device)
    batch = generate(model_dir, device, "--batch", "3")
    assert "batch" not in one
    assert batch["batch"] == 3 and batch["rows_identical"] is True, family
    assert batch["tokens"] == one["tokens"] and len(one["tokens"]) == 12
    t = batch["timings"]
    assert t["prefill_s"] > 0 and t["decode_s"] > 0
    # 3 rows of 11 decoded tokens each: the rate counts all of them.
    assert t["decode_tokens_per_s"] == pytest.approx(33 / t["decode_s"])
    assert t["prefill_tokens_per_s"] == pytest.approx(3 * len(batch["prompt_tokens"]) / t["prefill_s"])


def test_batch_out_of_range_is_a_usage_error(tiny_export):
    for n in ("0", "1025"):
        proc = run_s3attn("generate", "--model", tiny_export, "--prompt", PROMPT, "--batch", n, check=False)
        assert_one_line_error(proc, 2, "--batch")
