"""Mixed-length text, strings in, results out: zoo against sentence-transformers and transformers (see text.py)."""
from __future__ import annotations

import math
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

SYLLABLES = ("ka to ri en mo sa li an de or ul pe na is ve ho bu ta me co ar in el su ga fi ne lo ra mi th st pr "
             "ch").split()
MAX_SEQ_LENGTH = 256
BATCH = 32
LABELS = 3


def word_list(n: int = 6000, seed: int = 0) -> list[str]:
    """`n` distinct made-up words of one to four syllables, the same every run."""
    rng = random.Random(seed)
    words: dict[str, None] = {}
    while len(words) < n:
        words["".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 1, 2, 2, 2, 3, 3, 4))))] = None
    return list(words)


def corpus(n: int, seed: int = 3) -> list[str]:
    """`n` sentences of 3 to 120 words: Zipf word frequencies, log-normal lengths (median about 17 words)."""
    words = word_list()
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    texts = []
    for _ in range(n):
        length = min(120, max(3, round(math.exp(rng.gauss(math.log(18), 0.7)))))
        chosen = rng.choices(words, weights=weights, k=length)
        texts.append(" ".join([chosen[0].capitalize(), *chosen[1:]]) + rng.choice(".....?!"))
    return texts


def write_checkpoints(folder: Path, size: dict[str, int]) -> Path:
    """``encoder/``, ``classifier/`` (transformers' save_pretrained) and ``st/`` (sentence-transformers) in `folder`."""
    import transformers
    from sentence_transformers import SentenceTransformer, models

    if (folder / "st" / "modules.json").is_file() and (folder / "classifier" / "config.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    letters = sorted(set("".join(SYLLABLES)))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *".,?!", *letters, *(f"##{c}" for c in letters),
             *(f"##{s}" for s in SYLLABLES), *SYLLABLES]
    counts = Counter(w for t in corpus(5000, seed=1) for w in t.lower().rstrip(".?!").split())
    vocab += [w for w, _ in counts.most_common(3000) if w not in set(vocab)]
    vocab += [f"[unused{i}]" for i in range(30522 - len(vocab))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(vocab), num_labels=LABELS, **size)
    for name, model in (("encoder", transformers.BertModel(config, add_pooling_layer=False)),
                        ("classifier", transformers.BertForSequenceClassification(config))):
        model.save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)
    st = SentenceTransformer(modules=[models.Transformer(str(folder / "encoder"), max_seq_length=MAX_SEQ_LENGTH),
                                      models.Pooling(size["hidden_size"], pooling_mode="mean"), models.Normalize()],
                             device="cpu")
    st.save(str(folder / "st"))
    return folder


def transformers_runner(model, tokenizer, texts: list[str], device: torch.device, *, sort: bool,
                        embed: bool) -> Callable[[], torch.Tensor]:
    """Batches of 32 padded to their longest, sorted by length (longest first) or in input order."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i])) if sort else list(range(len(texts)))

    def run() -> torch.Tensor:
        out: list[torch.Tensor] = [torch.empty(0)] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), BATCH):
                index = order[start:start + BATCH]
                batch = tokenizer([texts[i] for i in index], padding=True, truncation=True,
                                  max_length=MAX_SEQ_LENGTH, return_tensors="pt").to(device)
                if embed:
                    hidden = model(**batch).last_hidden_state
                    weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    result = F.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)
                else:
                    result = model(**batch).logits
                for row, i in enumerate(index):
                    out[i] = result[row].float().cpu()
        return torch.stack(out)
    return run


def timed(engines: dict[str, Callable[[], torch.Tensor]], repeats: int, device: torch.device
          ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[float, float]]]:
    """Each engine's result (a first, untimed round) and median (CPU s, wall s) over `repeats` alternated rounds."""
    results = {name: fn() for name, fn in engines.items()}
    cpu: dict[str, list[float]] = {name: [] for name in engines}
    wall: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(repeats):
        for name, fn in engines.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start_wall)
    return results, {name: (statistics.median(cpu[name]), statistics.median(wall[name])) for name in engines}


def report(title: str, n: int, results: dict[str, torch.Tensor], times: dict[str, tuple[float, float]]) -> None:
    ours = results["zoo"]
    print(f"\n{title}")
    print(f"{'engine':<34} {'sent/s (CPU)':>12} {'sent/s (wall)':>13} {'zoo / it (CPU)':>15} {'zoo / it (wall)':>15} "
          f"{'max |diff|':>10}")
    for name, (cpu, wall) in times.items():
        ratio_cpu, ratio_wall = cpu / times["zoo"][0], wall / times["zoo"][1]
        diff = (results[name] - ours).abs().max().item()
        print(f"{name:<34} {n / cpu:>12.1f} {n / wall:>13.1f} {ratio_cpu:>14.2f}x {ratio_wall:>14.2f}x {diff:>10.2e}")


def run_mixed(args, size: dict[str, int], device: torch.device) -> None:
    import sentence_transformers
    import transformers

    import zoo
    from zoo.data import text as text_data

    texts = corpus(args.mixed)
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="zoo-text-bench-"))
    write_checkpoints(folder, size)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder / "encoder")
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_SEQ_LENGTH)["input_ids"]]
    print(f"mixed-length text: {len(texts)} sentences, {min(len(t.split()) for t in texts)}-"
          f"{max(len(t.split()) for t in texts)} words, {statistics.mean(lengths):.1f} tokens on average "
          f"(max {max(lengths)}); BERT shape {size}; {device}, {torch.get_num_threads()} threads")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, sentence-transformers "
          f"{sentence_transformers.__version__}; fp32; {args.repeats} alternated rounds, medians")

    st = sentence_transformers.SentenceTransformer(str(folder / "st"), device=str(device))
    encoder = transformers.AutoModel.from_pretrained(folder / "encoder").to(device).eval()
    embedder = zoo.create(f"local-dir:{folder / 'st'}").to(device).eval()
    engines = {
        "zoo": lambda: text_data.infer(embedder, texts),
        "sentence-transformers encode": lambda: st.encode(texts, batch_size=BATCH, convert_to_tensor=True).cpu(),
        "transformers, sorted by length": transformers_runner(encoder, tokenizer, texts, device, sort=True,
                                                              embed=True),
        "transformers, input order": transformers_runner(encoder, tokenizer, texts, device, sort=False, embed=True),
    }
    if args.bf16:
        embedder_bf16 = zoo.create(f"local-dir:{folder / 'st'}").to(device, torch.bfloat16).eval()
        engines["zoo bf16"] = lambda: text_data.infer(embedder_bf16, texts)
    results, times = timed(engines, args.repeats, device)
    report("embeddings (mean pooling, L2-normalised)", len(texts), results, times)

    classifier = transformers.AutoModelForSequenceClassification.from_pretrained(folder / "classifier")
    classifier = classifier.to(device).eval()
    ours = zoo.create(f"local-dir:{folder / 'classifier'}").to(device).eval()
    engines = {
        "zoo": lambda: text_data.infer(ours, texts),
        "transformers, sorted by length": transformers_runner(classifier, tokenizer, texts, device, sort=True,
                                                              embed=False),
        "transformers, input order": transformers_runner(classifier, tokenizer, texts, device, sort=False,
                                                         embed=False),
    }
    results, times = timed(engines, args.repeats, device)
    report(f"classification ({LABELS} classes, logits)", len(texts), results, times)
