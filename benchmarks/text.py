"""Encoder forward throughput: zoo's Transformer encoder against transformers' BERT, same weights, same process.

Both models are BERT-base sized (or --size tiny/base/large), random-initialised once and
loaded with the same weights (zoo's through its checkpoint key map), checked to agree, then
timed on the same batches (batch 32, length 128 by default) in fp32 and bf16 under
inference mode. Prints sentences per second for each and the ratio zoo / transformers.

    python benchmarks/text.py                      # CUDA if available, else CPU
    python benchmarks/text.py --device cpu --iters 3 --warmup 1 --threads 2

``--mixed N`` instead compares whole pipelines, strings in, embeddings or logits out, on N
sentences of 3 to 120 words (a deterministic corpus: Zipf-distributed made-up words,
log-normal sentence lengths, median about 17 words). It writes a BERT-shaped random
checkpoint with transformers' ``save_pretrained`` (an encoder, a 3-class classifier and a
sentence-transformers folder with mean pooling and Normalize, all sharing one tokenizer) and
times, alternated round by round, in CPU seconds of this process and wall seconds:

* embeddings: ``zoo.data.text.infer`` on the sentence-transformers folder, sentence-transformers'
  ``encode`` (batch 32; it sorts by length itself), and transformers' ``AutoModel`` plus mean
  pooling, batches of 32 padded to their longest, once sorted by length and once in input order;
* classification: ``zoo.data.text.infer`` on the classifier folder against transformers'
  ``AutoModelForSequenceClassification``, sorted and in input order.

It prints sentences per second, zoo's ratio to each, and the largest difference from zoo's
results (``--bf16`` adds zoo in bfloat16 and its difference from fp32).

    python benchmarks/text.py --mixed 500 --device cpu --repeats 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

SIZES = {
    "tiny": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
}


def _import_text_family():
    try:
        import zoo_text  # noqa: F401
    except ImportError:  # running from a source checkout without an install
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))


def build_pair(size: str, device: torch.device):
    """transformers' BertModel and zoo's encoder with the same random weights."""
    import transformers

    _import_text_family()
    from zoo_text.hf_checkpoints import config_to_kwargs, convert_state_dict
    from zoo_text.transformer import build_text_transformer

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, **SIZES[size], attn_implementation="sdpa")
    reference = transformers.BertModel(config, add_pooling_layer=False).eval()
    kwargs = config_to_kwargs({**config.to_dict(), "architectures": ["BertModel"]}, "bert", "feature-extraction")
    ours = build_text_transformer(**kwargs).eval()
    ours.load_state_dict(convert_state_dict(reference.state_dict(), "bert", "feature-extraction"), strict=True)
    return reference.to(device), ours.to(device)


def time_pair(first, second, iters: int, warmup: int, device: torch.device) -> tuple[list[float], list[float]]:
    """Seconds per call of two functions, alternated call by call so load changes hit both alike."""
    for _ in range(warmup):
        first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(iters):
        for fn, out in ((first, times[0]), (second, times[1])):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            out.append(time.perf_counter() - start)
    return times


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=sorted(SIZES), default="base")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--padding", type=float, default=0.0,
                        help="fraction of each row that is padding (0: attention masks are all ones)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--mixed", type=int, default=0, metavar="N",
                        help="compare whole pipelines on N mixed-length sentences (see above)")
    parser.add_argument("--repeats", type=int, default=2, help="--mixed: timed rounds per engine")
    parser.add_argument("--folder", default=None, help="--mixed: where the checkpoint is written (default: temp)")
    parser.add_argument("--bf16", action="store_true", help="--mixed: also time zoo in bfloat16")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.mixed:
        from text_mixed import run_mixed  # noqa: PLC0415  (the mixed-length comparison lives beside this script)

        run_mixed(args, SIZES[args.size], device)
        return
    import transformers

    reference, ours = build_pair(args.size, device)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (args.batch, args.length), generator=gen)
    mask = torch.ones_like(ids)
    if args.padding > 0:
        real = torch.randint(int(args.length * (1 - args.padding)), args.length + 1, (args.batch,), generator=gen)
        mask = (torch.arange(args.length)[None, :] < real[:, None]).long()
        ids = ids.masked_fill(mask == 0, 0)
    ids, mask = ids.to(device), mask.to(device)

    with torch.inference_mode():
        diff = (reference(input_ids=ids, attention_mask=mask).last_hidden_state
                - ours.forward_features(ids, mask)).abs().masked_fill(mask[..., None] == 0, 0).max().item()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"text encoder forward, BERT-{args.size}, batch {args.batch} x length {args.length}, "
          f"padding {args.padding:.0%}, {name}")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}; "
          f"fp32 max |zoo - transformers| = {diff:.2e}")
    print(f"{'dtype':<6} {'transformers sent/s':>20} {'zoo sent/s':>12} {'zoo / transformers':>19}")
    for dtype_name in args.dtypes.split(","):
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
        reference.to(dtype), ours.to(dtype)
        with torch.inference_mode():
            theirs, mine = time_pair(lambda: reference(input_ids=ids, attention_mask=mask),
                                     lambda: ours.forward_features(ids, mask), args.iters, args.warmup, device)
        rate_theirs = args.batch / statistics.median(theirs)
        rate_mine = args.batch / statistics.median(mine)
        print(f"{dtype_name:<6} {rate_theirs:>20.1f} {rate_mine:>12.1f} {rate_mine / rate_theirs:>18.2f}x")


if __name__ == "__main__":
    main()
