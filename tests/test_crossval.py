"""`lgfn crossval`: the fold function's properties, MoodyLyrics4Q, and a tiny end-to-end run."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from audio_factory import make_audio_file
from crossval_factory import make_crossval_data, tiny_recipe, write_moodylyrics
from hypothesis import given, settings
from hypothesis import strategies as st

from lgfn_model.cli import main as lgfn_main
from lgfn_model.evaluation.crossval_report import format_table
from lgfn_model.model.config import MOODS
from lgfn_model.testing import tiny_config
from lgfn_model.training.crossval import CrossvalSettings, run_crossval
from lgfn_model.training.datasets import (
    DATASETS,
    Example,
    load_examples,
    read_moodylyrics,
)
from lgfn_model.training.duplicates import duplicate_groups
from lgfn_model.training.splits import kfold_splits, leave_out_split, stratum
from lgfn_model.training.train import TrainSettings

# ------------------------------------------------------------------------------ fold properties

LABELS = {"4q": ("Q1", "Q2", "Q3", "Q4"), "nju": MOODS, "mirex": ("cluster1", "cluster2")}


def _example(ident: str, dataset: str, label: str, title: str, artist: str) -> Example:
    return Example(
        id=f"{dataset}:{ident}",
        dataset=dataset,
        audio=None,
        lyrics=None,
        mood=0,
        valence=1.0,
        arousal=1.0,
        artist=artist,
        title=title,
        label=label,
    )


@st.composite
def example_sets(draw: st.DrawFn, shared: bool = True) -> list[Example]:
    """Examples over three datasets; with ``shared``, some titles repeat (one song twice)."""
    count = draw(st.integers(min_value=6, max_value=40))
    titles = draw(st.integers(min_value=3, max_value=count)) if shared else count
    out = []
    for i in range(count):
        dataset = draw(st.sampled_from(sorted(LABELS)))
        label = draw(st.sampled_from(LABELS[dataset]))
        song = draw(st.integers(min_value=0, max_value=titles - 1)) if shared else i
        out.append(_example(str(i), dataset, label, f"Song {song}", f"Artist {song}"))
    return out


def _fold_of(folds) -> dict[str, int]:
    return {e.id: i for i, fold in enumerate(folds) for e in fold.test}


@settings(max_examples=60, deadline=None)
@given(example_sets(), st.integers(min_value=2, max_value=5))
def test_every_example_is_tested_exactly_once_and_no_song_spans_folds(examples, k) -> None:
    groups = duplicate_groups(examples)
    if len(set(groups.values())) < k:
        with pytest.raises(ValueError, match="cannot fill"):
            kfold_splits(examples, k)
        return
    folds = kfold_splits(examples, k)
    assert len(folds) == k
    tested = Counter(e.id for fold in folds for e in fold.test)
    assert tested == Counter(e.id for e in examples)
    fold_of = _fold_of(folds)
    by_group = defaultdict(set)
    for example in examples:
        by_group[groups[example.id]].add(fold_of[example.id])
    assert all(len(found) == 1 for found in by_group.values())
    for fold in folds:
        assert {e.id for e in fold.train}.isdisjoint(e.id for e in fold.test)
        assert len(fold.train) + len(fold.test) == len(examples)


@settings(max_examples=60, deadline=None)
@given(example_sets(shared=False), st.integers(min_value=2, max_value=5))
def test_strata_are_balanced_within_one(examples, k) -> None:
    folds = kfold_splits(examples, k)
    for s in {stratum(e) for e in examples}:
        sizes = [sum(1 for e in fold.test if stratum(e) == s) for fold in folds]
        assert max(sizes) - min(sizes) <= 1, (s, sizes)
    totals = [len(fold.test) for fold in folds]
    assert max(totals) - min(totals) <= 1


@settings(max_examples=60, deadline=None)
@given(example_sets(), st.integers(min_value=2, max_value=4))
def test_shared_songs_unbalance_a_stratum_by_at_most_their_members(examples, k) -> None:
    groups = duplicate_groups(examples)
    if len(set(groups.values())) < k:
        return
    folds = kfold_splits(examples, k)
    size = Counter(groups.values())
    for s in {stratum(e) for e in examples}:
        shared = sum(1 for e in examples if stratum(e) == s and size[groups[e.id]] > 1)
        sizes = [sum(1 for e in fold.test if stratum(e) == s) for fold in folds]
        assert max(sizes) - min(sizes) <= max(1, shared)


@settings(max_examples=30, deadline=None)
@given(example_sets(), st.randoms(use_true_random=False))
def test_folds_are_deterministic_and_ignore_order(examples, rng) -> None:
    if len(set(duplicate_groups(examples).values())) < 3:
        return
    shuffled = list(examples)
    rng.shuffle(shuffled)
    first, second = kfold_splits(examples, 3), kfold_splits(shuffled, 3)
    assert [[e.id for e in f.test] for f in first] == [[e.id for e in f.test] for f in second]


def test_nju_own_split_is_ignored() -> None:
    examples = [
        dataclasses.replace(_example(str(i), "nju", "happy", f"T{i}", f"A{i}"), fixed_split="test")
        for i in range(10)
    ]
    folds = kfold_splits(examples, 2)
    assert [len(f.test) for f in folds] == [5, 5]
    assert all(len(f.train) == 5 for f in folds)


def test_leave_out_drops_the_test_sets_songs_from_training() -> None:
    examples = [
        _example("1", "mirex", "cluster1", "Shared", "Zed Zeppo"),
        _example("2", "4q", "Q1", "Shared", "Zed Zeppo"),
        _example("3", "4q", "Q2", "Other", "Zed Zeppo"),
        _example("4", "nju", "sad", "Third", "Singer"),
    ]
    split = leave_out_split(examples, "mirex")
    assert split.name == "leave-out-mirex"
    assert [e.id for e in split.test] == ["mirex:1"]
    assert [e.id for e in split.train] == ["4q:3", "nju:4"]
    assert [e.id for e in split.excluded] == ["4q:2"]
    with pytest.raises(ValueError, match="no such dataset"):
        leave_out_split(examples, "moodylyrics")


# ------------------------------------------------------------------------------ MoodyLyrics4Q


def test_moodylyrics_reads_as_lyrics_only_examples(tmp_path: Path) -> None:
    write_moodylyrics(tmp_path, ["happy", "angry", "sad", "relaxed"])
    (tmp_path / "moodylyrics" / "lyrics" / "ML3.txt").unlink()  # a missing file is skipped
    examples = read_moodylyrics(tmp_path / "moodylyrics")
    assert [e.id for e in examples] == ["moodylyrics:ML0", "moodylyrics:ML1", "moodylyrics:ML2"]
    angry = examples[1]
    assert (angry.audio, angry.mood_name, angry.valence, angry.arousal) == (None, "angry", -1, 1)
    assert angry.label == "angry" and angry.fixed_split is None and angry.has_lyrics
    # Not in what `lgfn train` reads by default: the held-out recipe's data stays as it was.
    assert "moodylyrics" not in DATASETS
    assert len(load_examples(tmp_path, ["moodylyrics"])) == 3


# ------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4Q (2 clips per quadrant), MIREX-like (clusters 1/3/5/2), NJU and MoodyLyrics4Q."""
    return make_crossval_data(tmp_path_factory.mktemp("cvdata"))


def test_crossval_end_to_end_writes_every_fold_and_resumes(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    cache = tmp_path / "cache"
    settings = CrossvalSettings(
        data=data_root,
        recipe=tiny_recipe(data_root, cache),
        out=out,
        folds=2,
        snrs=(0.0,),
        jobs=2,  # the two folds train in two spawned processes
    )
    report = run_crossval(settings)
    assert report["folds_done"] == 2 and report["mode"] == "kfold"
    assert report["examples"] == {"4q": 8, "mirex": 8, "moodylyrics": 8, "nju": 8}
    for index in (1, 2):
        fold = json.loads((out / f"fold-{index}.json").read_text())
        assert set(fold["clean"]) == {"mirex", "4q", "nju", "moodylyrics"}
        assert set(fold["snr_0db"]) == {"mirex", "4q"}
        assert (out / f"fold-{index}" / "model" / "model.safetensors").is_file()
    clean = report["aggregate"]["clean"]
    # Every example is tested once: the n over folds is the whole dataset.
    assert clean["4q"]["n"] == 8 and clean["nju"]["mood acc"]["n"] == 8
    assert clean["mirex"]["mood acc"]["n"] == 6  # clusters 1/3/5 carry a mood
    assert clean["mirex"]["valence acc"]["n"] == 8  # all five clusters carry valence
    assert clean["mirex"]["arousal acc"]["n"] == 6  # 1/5 high, 3 low
    assert len(clean["moodylyrics"]["mood acc"]["values"]) == 2
    figure = clean["4q"]["mood acc"]
    assert figure["min"] <= figure["mean"] <= figure["max"] and figure["sd"] is not None
    table = format_table(report)
    assert "MoodyLyrics4Q (lyrics)" in table and "snr 0db" in table

    # A second run trains nothing: both folds' results are there.
    before = {i: (out / f"fold-{i}.json").stat().st_mtime_ns for i in (1, 2)}
    again = run_crossval(settings)
    assert again["aggregate"] == report["aggregate"] and again["cache_seconds"] == 0
    assert before == {i: (out / f"fold-{i}.json").stat().st_mtime_ns for i in (1, 2)}

    # Another recipe in the same folder is refused, not mixed in.
    other = dataclasses.replace(settings, recipe=dataclasses.replace(settings.recipe, seed=1))
    with pytest.raises(ValueError, match="another recipe"):
        run_crossval(other)


def test_crossval_resumes_a_missing_fold_only(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    settings = CrossvalSettings(
        data=data_root,
        recipe=tiny_recipe(data_root, tmp_path / "cache"),
        out=out,
        folds=2,
        only=(2,),
    )
    first = run_crossval(settings)
    assert first["folds_done"] == 1 and not (out / "fold-1.json").exists()
    done = (out / "fold-2.json").stat().st_mtime_ns
    second = run_crossval(dataclasses.replace(settings, only=()))
    assert second["folds_done"] == 2
    assert (out / "fold-2.json").stat().st_mtime_ns == done


def test_cli_leave_out_runs_one_model(data_root: Path, tmp_path: Path, capsys) -> None:
    tiny = tiny_config()
    args = ["crossval", "--data", str(data_root), "--leave-out", "4q", "--epochs", "1"]
    args += ["--batch-size", "8", "--workers", "0", "--device", "cpu", "--out", str(tmp_path)]
    args += ["--cache", str(tmp_path / "cache"), "--set", f"d_model={tiny.d_model}"]
    for key in ("frames_per_window", "resnet_channels", "wave_channels"):
        args += ["--set", f"{key}={json.dumps(getattr(tiny, key))}"]
    args += ["--set", "pretrained_audio=null"]  # the default 9 s windows; the clips are padded
    assert lgfn_main(args) == 0
    report = json.loads((tmp_path / "crossval.json").read_text())
    assert report["mode"] == "leave-out-4q" and report["folds_done"] == 1
    fold = report["folds"][0]
    assert set(fold["clean"]) == {"4q"} and fold["test_examples"] == 8
    assert "4Q" in capsys.readouterr().out


def test_cli_refuses_a_teacher(data_root: Path, tmp_path: Path, capsys) -> None:
    args = ["crossval", "--data", str(data_root), "--teacher", "default", "--out", str(tmp_path)]
    assert lgfn_main(args) == 2
    assert "teacher per fold" in capsys.readouterr().err


def _pooled_accuracy(report: dict, dataset: str, metric: str) -> float:
    """The accuracy over all examples from the folds' own figures (weighted by their n)."""
    folds = report["folds"]
    parts = [(f["clean"][dataset][metric]["accuracy"], f["clean"][dataset][metric]["n"])
             for f in folds if f["clean"].get(dataset, {}).get(metric, {}).get("n")]  # fmt: skip
    return sum(a * n for a, n in parts) / sum(n for _, n in parts)


def test_compare_crossval_pairs_two_recipes_example_by_example(
    data_root: Path, tmp_path: Path, capsys
) -> None:
    cache = tmp_path / "cache"
    runs = {}
    for seed in (0, 1):
        recipe = dataclasses.replace(tiny_recipe(data_root, cache), seed=seed)
        out = tmp_path / f"cv-s{seed}"
        runs[seed] = run_crossval(
            CrossvalSettings(data=data_root, recipe=recipe, out=out, folds=2, snrs=(0.0,))
        )
        fold = json.loads((out / "fold-1.json").read_text())
        stored = fold["predictions"]
        assert set(stored) == {"clean", "snr_0db"}
        assert len(stored["clean"]["id"]) == fold["test_examples"]
        assert len(stored["clean"]["probs"][0]) == 4
        assert "predictions" not in runs[seed]["folds"][0]  # the report keeps the figures only

    json_path = tmp_path / "compare.json"
    args = ["compare", "--crossval", "--data", str(data_root), "--samples", "200"]
    assert lgfn_main([*args, str(tmp_path / "cv-s0"), str(tmp_path / "cv-s1"), "--json",
                      str(json_path)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "paired over 2 fold(s)" in text and "MIREX-like" in text and "snr 0db" in text
    report = json.loads(json_path.read_text())
    clean = report["conditions"]["clean"]
    assert set(clean) == {"mirex", "4q", "nju", "moodylyrics"}
    assert set(report["conditions"]["snr_0db"]) == {"mirex", "4q"}
    # The pooled accuracies are exactly those of the folds' own figures.
    for dataset, mood_n in (("4q", 8), ("mirex", 6), ("nju", 8)):
        mood = clean[dataset]["mood"]
        assert mood["n"] == mood_n
        assert mood["accuracy_a"] == pytest.approx(_pooled_accuracy(runs[0], dataset, "mood"))
        assert mood["accuracy_b"] == pytest.approx(_pooled_accuracy(runs[1], dataset, "mood"))
    assert clean["mirex"]["valence"]["n"] == 8 and clean["mirex"]["arousal"]["n"] == 6
    assert clean["mirex"]["macro_f1"]["n"] == 6

    # --by-label: each dataset split by its source labels, the parts adding up to the whole.
    assert lgfn_main([*args, "--by-label", str(tmp_path / "cv-s0"), str(tmp_path / "cv-s1"),
                      "--json", str(json_path)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "MIREX-like, cluster1" in text and "4Q, Q2" in text
    by_label = json.loads(json_path.read_text())["conditions"]["clean"]
    for dataset, whole in clean.items():
        parts = {g: f for g, f in by_label.items() if g.startswith(f"{dataset}/")}
        assert len(parts) > 1, dataset
        for label in ("mood", "valence", "arousal"):
            counted = [f[label] for f in parts.values() if f[label]["n"]]
            assert sum(f["n"] for f in counted) == whole[label]["n"]
            right = sum(f["accuracy_a"] * f["n"] for f in counted)
            assert right == pytest.approx((whole[label]["accuracy_a"] or 0) * whole[label]["n"])
        assert all("macro_f1" not in f for f in parts.values())  # one true mood in each part
    assert lgfn_main(["compare", "--by-label", "--data", str(data_root), "a", "b"]) == 2
    assert "--by-label needs --crossval" in capsys.readouterr().err

    # A recipe against itself: no difference, and an interval of exactly nothing.
    assert lgfn_main([*args, str(tmp_path / "cv-s0"), str(tmp_path / "cv-s0"), "--json",
                      str(json_path)]) == 0  # fmt: skip
    same = json.loads(json_path.read_text())["conditions"]["clean"]["4q"]
    assert same["mood"]["difference"] == 0 and same["mood"]["interval_95"] == [0.0, 0.0]
    assert same["mood"]["mcnemar_p"] == 1.0 and same["macro_f1"]["difference"] == 0

    # Several trainings a side: A = the mean of seeds 0 and 1, B = seed 1 alone.
    assert lgfn_main([*args, str(tmp_path / "cv-s0"), str(tmp_path / "cv-s1"), "--also-a",
                      str(tmp_path / "cv-s1"), "--json", str(json_path)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "A = the mean of 2 trainings" in text and "each training: A" in text
    several = json.loads(json_path.read_text())
    assert several["runs_a"] == [str(tmp_path / "cv-s0"), str(tmp_path / "cv-s1")]
    for dataset, whole in clean.items():
        mood, alone = several["conditions"]["clean"][dataset]["mood"], whole["mood"]
        each = [alone["accuracy_a"], alone["accuracy_b"]]
        assert mood["runs_a"] == pytest.approx(each), dataset
        assert mood["accuracy_a"] == pytest.approx(sum(each) / 2)
        assert mood["accuracy_b"] == pytest.approx(alone["accuracy_b"])
        assert mood["training_sd"] == pytest.approx(abs(each[0] - each[1]) / 2**0.5)
        low, high = mood["interval_95_trainings"]
        assert low <= mood["difference"] <= high
    f1 = several["conditions"]["clean"]["4q"]["macro_f1"]
    assert f1["runs_a"] == pytest.approx([clean["4q"]["macro_f1"]["macro_f1_a"],
                                          clean["4q"]["macro_f1"]["macro_f1_b"]])  # fmt: skip
    assert lgfn_main(["compare", "--also-a", "c", "--data", str(data_root), "a", "b"]) == 2
    assert "--also-a / --also-b need --crossval" in capsys.readouterr().err

    # One run read a lyrics-only example the other refused (a text-reading fix between them):
    # the rest is paired and the example named; a missing clip with audio is refused.
    fold_file = tmp_path / "cv-s1" / "fold-1.json"
    kept = fold_file.read_text()
    fold = json.loads(kept)
    ids = fold["predictions"]["clean"]["id"]
    for prefix, accepted in (("moodylyrics:", True), ("4q:", False)):
        drop = next(i for i, name in enumerate(ids) if name.startswith(prefix))
        trimmed = json.loads(kept)
        for part in trimmed["predictions"].values():
            if drop < len(part["id"]) and part["id"][drop] == ids[drop]:
                for key in ("id", "probs", "p_valence", "p_arousal"):
                    del part[key][drop]
        fold_file.write_text(json.dumps(trimmed))
        code = lgfn_main([*args, str(tmp_path / "cv-s0"), str(tmp_path / "cv-s1")])
        captured = capsys.readouterr()
        if accepted:
            assert code == 0
            said = f"fold-1: 1 lyrics-only example(s) tested by one run only, left out: {ids[drop]}"
            assert said in captured.out
        else:
            assert code == 2 and "tested other examples in this fold" in captured.err
    fold_file.write_text(kept)

    # A fold measured before the predictions were kept is named, not silently skipped.
    old = tmp_path / "cv-s1" / "fold-2.json"
    fold = json.loads(old.read_text())
    del fold["predictions"]
    old.write_text(json.dumps(fold))
    assert lgfn_main([*args, str(tmp_path / "cv-s0"), str(tmp_path / "cv-s1")]) == 2
    assert "fold-2.json: measured before fold results kept their predictions" in (
        capsys.readouterr().err
    )


def test_each_fold_distils_from_the_teacher_run_of_the_same_fold(
    data_root: Path, tmp_path: Path, capsys
) -> None:
    from lgfn_model.runtime.checkpoint import checkpoint_metadata

    cache = tmp_path / "cache"
    teachers = tmp_path / "teachers"
    run_crossval(
        CrossvalSettings(
            data=data_root, recipe=tiny_recipe(data_root, cache), out=teachers, folds=2
        )
    )
    students = tmp_path / "students"
    recipe = dataclasses.replace(tiny_recipe(data_root, cache), teacher_weight=2.0)
    settings = CrossvalSettings(
        data=data_root, recipe=recipe, out=students, folds=2, teacher_folds=teachers
    )
    report = run_crossval(settings)
    assert report["folds_done"] == 2
    for index in (1, 2):
        metadata = checkpoint_metadata(students / f"fold-{index}" / "model")
        assert metadata["teacher"] == f"lgfn-crossval-fold-{index}-s0"  # its own fold's model
        assert metadata["teacher_weight"] == 2.0
    # The fingerprint names the teachers' run: a plain rerun of the recipe is another recipe.
    with pytest.raises(ValueError, match="another recipe"):
        run_crossval(dataclasses.replace(settings, teacher_folds=None))

    # Teachers of other folds (here: 3 folds) could have seen a test song: refused.
    other = tmp_path / "other"
    run_crossval(
        CrossvalSettings(
            data=data_root, recipe=tiny_recipe(data_root, cache), out=other, folds=3, only=(1, 2)
        )
    )
    args = ["crossval", "--data", str(data_root), "--folds", "2", "--out", str(tmp_path / "x")]
    args += ["--teacher-folds", str(other), "--epochs", "1", "--workers", "0"]
    assert lgfn_main(args) == 2
    err = capsys.readouterr().err
    assert "fold-1 of" in err and "was tested on other examples than this fold-1" in err
    missing = ["--teacher-folds", str(tmp_path / "nothing")]
    assert lgfn_main([*args[:-4], *missing]) == 2
    assert "has no finished fold-1" in capsys.readouterr().err


def test_a_teacher_fold_may_lack_only_the_test_examples_no_fold_can_measure(
    tmp_path: Path,
) -> None:
    from lgfn_model.training.crossval_teacher import check_fold_teacher
    from lgfn_model.training.datasets import Example

    words = tmp_path / "words.txt"
    words.write_text("I walk away\nin the rain\n")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)) * 4)  # reads as no lyrics: no fold measures it
    tone = make_audio_file(tmp_path / "tone.flac", seconds=2.5)
    sung = Example("moodylyrics:A", "moodylyrics", None, words, 2, -1.0, -1.0)
    unreadable = Example("moodylyrics:B", "moodylyrics", None, binary, 2, -1.0, -1.0)
    heard = Example("4q:C", "4q", tone, None, 0, 1.0, 1.0)
    recipe = TrainSettings(data=tmp_path, out=tmp_path / "m", cache=tmp_path / "cache", workers=0)
    test = [sung, unreadable, heard]
    teachers = tmp_path / "teachers"
    (teachers / "fold-1" / "model").mkdir(parents=True)

    def tested(*ids: str) -> None:
        document = {"predictions": {"clean": {"id": list(ids)}}}
        (teachers / "fold-1.json").write_text(json.dumps(document))

    tested("moodylyrics:A", "4q:C")
    check_fold_teacher(teachers, "fold-1", test, recipe)
    # Lyrics the teacher's code read as no text (before a text-reading fix, e.g. mojibake
    # repair): it learnt nothing from them in any fold, so it may lack them.
    tested("4q:C")
    check_fold_teacher(teachers, "fold-1", test, recipe)
    for wrong in (("moodylyrics:A",), ("moodylyrics:A", "4q:C", "moodylyrics:D")):
        tested(*wrong)  # a measurable clip not tested, or one tested that is not ours
        with pytest.raises(ValueError, match="tested on other examples than this fold-1"):
            check_fold_teacher(teachers, "fold-1", test, recipe)
