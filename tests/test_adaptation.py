"""Adapting the mood head to a listener's labels: exact start, held near the shipped head,
chosen by cross-validation, and no change when the labels do not support one."""

from __future__ import annotations

import numpy as np
import pytest

from lgfn_model.training.adaptation import Head, adapt, choose_strength, fit_head

D, K = 16, 4


def _world(seed: int = 0) -> tuple[np.ndarray, Head]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(K, D))
    weight = centres.copy()
    weight[3] = centres[0] * 1.1  # the shipped head calls this listener's happy "relaxed"
    return centres, Head(weight, np.zeros(K))


def _labelled(centres: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3  # happy / angry / sad: this listener never says relaxed
    return centres[labels] + 0.8 * rng.normal(size=(n, D)), labels


def test_the_shipped_head_reproduces_softmax_of_the_mean_logits() -> None:
    rng = np.random.default_rng(1)
    head = Head(rng.normal(size=(K, D)), rng.normal(size=K))
    windows = rng.normal(size=(5, D))
    logits = windows @ head.weight.T + head.bias
    mean = logits.mean(axis=0)
    expected = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()
    np.testing.assert_allclose(head.probabilities(windows.mean(axis=0, keepdims=True))[0], expected)


def test_a_strong_penalty_stays_at_the_shipped_head_and_a_weak_one_follows_the_labels() -> None:
    centres, shipped = _world()
    x, y = _labelled(centres, 60, seed=2)
    near = fit_head(x, y, shipped, strength=100.0)
    far = fit_head(x, y, shipped, strength=1e-3)
    assert np.abs(near.weight - shipped.weight).max() < np.abs(far.weight - shipped.weight).max()
    assert (far.predict(x) == y).mean() > (shipped.predict(x) == y).mean() + 0.2
    assert fit_head(x, y, shipped, float("inf")) is shipped


def test_adapting_to_fifty_labels_fits_the_rest_of_the_library_better() -> None:
    centres, shipped = _world()
    x, y = _labelled(centres, 50, seed=3)
    rest_x, rest_y = _labelled(centres, 600, seed=4)
    result = adapt(x, y, shipped)
    assert result.changed and result.labels == 50
    adapted = (result.head.predict(rest_x) == rest_y).mean()
    as_shipped = (shipped.predict(rest_x) == rest_y).mean()
    assert adapted > as_shipped + 0.15
    assert result.cv_accuracy_adapted is not None and result.cv_accuracy_shipped is not None
    assert result.cv_accuracy_adapted > result.cv_accuracy_shipped


def test_labels_that_agree_with_the_shipped_head_leave_it_as_shipped() -> None:
    rng = np.random.default_rng(5)
    shipped = Head(rng.normal(size=(K, D)) * 4, np.zeros(K))
    x = rng.normal(size=(40, D))
    y = shipped.predict(x)  # the listener agrees with the model everywhere
    assert choose_strength(x, y, shipped) == float("inf")


def test_too_few_labels_to_cross_validate_change_nothing() -> None:
    centres, shipped = _world()
    x, y = _labelled(centres, 3, seed=6)  # one of each: no fold can hold one out
    result = adapt(x, y, shipped)
    assert not result.changed and result.head is shipped
    assert result.cv_accuracy_adapted is None


@pytest.mark.parametrize("seed", [0, 1])
def test_the_choice_is_reproducible(seed: int) -> None:
    centres, shipped = _world()
    x, y = _labelled(centres, 30, seed=7)
    assert adapt(x, y, shipped, seed=seed).strength == adapt(x, y, shipped, seed=seed).strength


def test_a_tracks_embedding_through_the_models_head_is_its_prediction(tmp_path) -> None:
    from audio_factory import make_audio_file

    from lgfn_model.data.lyrics import parse_plain
    from lgfn_model.runtime.predictor import Predictor, TrackInput
    from lgfn_model.testing import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "ckpt")
    predictor = Predictor.load(checkpoint, device="cpu", workers=0, precision="fp32")
    song = make_audio_file(tmp_path / "song.flac", seconds=7.0)
    head = predictor.model.mood_head
    shipped = Head(head.weight.detach().double().numpy(), head.bias.detach().double().numpy())
    for lyrics in (None, parse_plain("la la la\nhey hey")):
        (result,) = predictor.predict_many([TrackInput(song, lyrics)])
        prediction = result.prediction
        assert prediction is not None and len(prediction.windows) > 1
        embedding = np.asarray([prediction.embedding])
        assert embedding.shape == (1, predictor.config.d_model)
        expected = [prediction.probabilities[m] for m in predictor.config.labels]
        np.testing.assert_allclose(shipped.probabilities(embedding)[0], expected, atol=1e-5)


def test_the_other_rules_tools_compares_start_from_the_shipped_head() -> None:
    from tools.adaptation_rules import em_head, fit_transform

    rng = np.random.default_rng(0)
    shipped = Head(rng.standard_normal((4, 6)), rng.standard_normal(4))
    x = rng.standard_normal((40, 6))
    y = rng.integers(0, 4, 40)
    assert fit_transform(x, y, shipped, float("inf")) is shipped
    # A logit transform is still a linear head on the embedding, and a strong hold keeps it.
    held = fit_transform(x, y, shipped, 1e6)
    assert np.allclose(held.probabilities(x), shipped.probabilities(x), atol=1e-4)
    # EM on a library whose predictions are balanced already changes nothing.
    balanced = Head(np.zeros((4, 6)), np.zeros(4))
    assert np.allclose(em_head(balanced, x).bias, 0.0)


def test_the_valence_arousal_quadrant_head_picks_the_quadrant_of_their_signs() -> None:
    from tools.adaptation_rules import blend, quadrant_head

    rng = np.random.default_rng(1)
    affect = Head(rng.standard_normal((2, 6)), rng.standard_normal(2))
    labels = ("happy", "angry", "sad", "relaxed")
    quadrant = quadrant_head(affect, labels)
    x = rng.standard_normal((200, 6))
    valence, arousal = (x @ affect.weight.T + affect.bias).T  # the affect head before tanh
    expected = np.select(
        [(valence > 0) & (arousal > 0), (valence <= 0) & (arousal > 0), (valence <= 0)],
        [0, 1, 2],
        default=3,
    )
    assert (quadrant.predict(x) == expected).all()
    shipped = Head(rng.standard_normal((4, 6)), rng.standard_normal(4))
    assert blend(shipped, quadrant, 0.0).probabilities(x) == pytest.approx(shipped.probabilities(x))


def test_library_coordinates_keep_every_tracks_logits() -> None:
    from lgfn_model.training.adaptation import library_coordinates

    rng = np.random.default_rng(8)
    library = rng.normal(size=(200, D)) * np.linspace(0.1, 5.0, D) + 3.0
    coordinates = library_coordinates(library)
    assert coordinates is not None
    head = Head(rng.normal(size=(K, D)), rng.normal(size=K))
    here = coordinates.head_here(head)
    z = coordinates.of(library)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(z @ here.weight.T + here.bias, library @ head.weight.T + head.bias)
    back = coordinates.head_back(here)
    np.testing.assert_allclose(back.weight, head.weight, atol=1e-9)
    np.testing.assert_allclose(back.bias, head.bias, atol=1e-9)
    # A change of the head costs what it changes the library's logits by (halfway shrunk):
    # along the widest direction far more than along the narrowest.
    wide, narrow = np.zeros((K, D)), np.zeros((K, D))
    wide[0, -1] = narrow[0, 0] = 1.0
    assert np.sum((wide @ coordinates.half) ** 2) > 3 * np.sum((narrow @ coordinates.half) ** 2)
    assert library_coordinates(library[:1]) is None
    assert library_coordinates(np.ones((10, D))) is None


def test_adapting_with_the_library_fits_the_rest_better_and_still_keeps_agreeing_labels() -> None:
    centres, shipped = _world()
    x, y = _labelled(centres, 50, seed=3)
    rest_x, rest_y = _labelled(centres, 600, seed=4)
    library = np.concatenate([x, rest_x])
    result = adapt(x, y, shipped, library=library)
    assert result.changed
    adapted = (result.head.predict(rest_x) == rest_y).mean()
    assert adapted > (shipped.predict(rest_x) == rest_y).mean() + 0.15
    rng = np.random.default_rng(5)
    agreeing = Head(rng.normal(size=(K, D)) * 4, np.zeros(K))
    x = rng.normal(size=(40, D))
    assert not adapt(x, agreeing.predict(x), agreeing, library=x).changed
