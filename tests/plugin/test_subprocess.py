"""The installed ``beet`` executable, in fresh processes: no torch for ``beet ls``, and a
whole import → analyse → query round trip with decoding in a worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from audio_factory import make_audio_file
from beets.library import Item, Library
from mediafile import MediaFile

from .conftest import TEST_MODEL_VERSION

BEET = Path(sys.executable).with_name("beet")


def _config(root: Path, checkpoint: Path, **emotion: object) -> dict[str, str]:
    options = {"checkpoint": str(checkpoint), "workers": 0, **emotion}
    lines = "\n".join(f"  {key}: {value}" for key, value in options.items())
    (root / "config.yaml").write_text(
        textwrap.dedent(
            f"""\
            directory: {root / "music"}
            library: {root / "library.db"}
            plugins: [emotion]
            create_backup_before_migrations: no
            import:
              copy: yes
              write: yes
            emotion:
            """
        )
        + lines
        + "\n"
    )
    return {**os.environ, "BEETSDIR": str(root), "HOME": str(root)}


def _beet_in_a_fresh_process(
    env: dict[str, str], commands: list[list[str]]
) -> subprocess.CompletedProcess[str]:
    """``beet`` commands, one after another in one new Python process, which prints whether
    torch got imported on its last line (NO TORCH / TORCH LOADED)."""
    probe = textwrap.dedent(
        f"""\
        import sys
        from beets import ui
        for args in {commands!r}:
            try:
                ui.main(args)
            except SystemExit as done:
                assert not done.code, done.code
        print("TORCH LOADED" if "torch" in sys.modules else "NO TORCH")
        """
    )
    return subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )


def test_beet_ls_and_skipping_never_import_torch(tmp_path: Path, tiny_checkpoint: Path) -> None:
    env = _config(tmp_path, tiny_checkpoint)
    library = Library(str(tmp_path / "library.db"), str(tmp_path / "music"))
    library.add(
        Item(
            path=str(tmp_path / "x.mp3"),
            title="Calm One",
            mood="relaxed",
            emotion_relaxed=0.8,
            emotion_model=TEST_MODEL_VERSION,
        )
    )
    library._close()
    result = _beet_in_a_fresh_process(
        env, [["ls"], ["ls", "mood:relaxed"], ["ls", "emotion_relaxed:0.5.."], ["emotion"]]
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count(" -  - Calm One") == 3  # ls, mood:relaxed and the numeric range
    assert "skipped 1 (already analysed by lgfn-test-tiny)" in result.stdout
    assert lines[-1] == "NO TORCH"


def test_re_tagging_from_stored_embeddings_never_imports_torch(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    import numpy as np

    from beetsplug.emotion.fields import MOODS, decode_embedding, encode_embedding
    from lgfn_model.runtime.personal_head import Head, PersonalHead, save_personal_head

    env = _config(tmp_path, tiny_checkpoint)
    rng = np.random.default_rng(0)
    personal = PersonalHead(
        TEST_MODEL_VERSION, MOODS, Head(rng.standard_normal((4, 32)), rng.standard_normal(4))
    )
    save_personal_head(tmp_path / "emotion", personal)  # <config folder>/emotion
    library = Library(str(tmp_path / "library.db"), str(tmp_path / "music"))
    embedding = decode_embedding(encode_embedding(list(rng.standard_normal(32))))
    assert embedding is not None
    library.add(
        Item(
            path=str(tmp_path / "x.mp3"),
            title="Calm One",
            mood="relaxed",
            emotion_relaxed=0.8,
            emotion_model=TEST_MODEL_VERSION,
            emotion_embedding=encode_embedding(embedding),
        )
    )
    library._close()
    result = _beet_in_a_fresh_process(env, [["emotion", "-W"]])
    assert result.returncode == 0, result.stderr
    assert "1 of them re-tagged from stored embeddings (no audio decoded)" in result.stdout
    assert result.stdout.splitlines()[-1] == "NO TORCH"
    library = Library(str(tmp_path / "library.db"), str(tmp_path / "music"))
    (item,) = library.items()
    assert item.get("emotion_model") == personal.version
    expected = personal.probabilities(embedding)
    assert item.get("mood") == max(expected, key=expected.__getitem__)


@pytest.mark.parametrize("workers", [1])
def test_real_beet_import_and_query(tmp_path: Path, tiny_checkpoint: Path, workers: int) -> None:
    env = _config(tmp_path, tiny_checkpoint, workers=workers)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for n, (name, kind) in enumerate((("one.mp3", "tone"), ("two.flac", "noise")), 1):
        path = make_audio_file(incoming / name, seconds=3.0, kind=kind)
        media = MediaFile(str(path))
        media.update({"title": f"Song {n}", "artist": "Band", "album": "Record", "track": n})
        media.save()
    (incoming / "one.lrc").write_text("[00:00.50]la la la\n[00:01.50]oh yeah\n")

    imported = subprocess.run(
        [str(BEET), "import", "-q", "-A", str(incoming)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr

    listed = subprocess.run(
        [str(BEET), "ls", "-f", "$title|$mood|$emotion_lyrics|$emotion_model"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = sorted(line.split("|") for line in listed.stdout.splitlines())
    assert [r[0] for r in rows] == ["Song 1", "Song 2"]
    assert [r[2] for r in rows] == ["lrc", "none"]
    assert all(
        r[1] in ("happy", "angry", "sad", "relaxed") and r[3] == TEST_MODEL_VERSION for r in rows
    )
    mood = rows[0][1]
    by_mood = subprocess.run(
        [str(BEET), "ls", "-f", "$title", f"mood:{mood}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Song 1" in by_mood.stdout.splitlines()
