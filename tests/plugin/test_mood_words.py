"""The hand-set mood words ``--learn`` can use, and the ``mood_words`` option."""

from __future__ import annotations

import pytest

from beetsplug.emotion import fields, settings
from beetsplug.emotion.mood_words import SYNONYMS, mood_of, read_labels, word_table


def test_the_four_moods_and_their_words_map() -> None:
    table = word_table()
    assert mood_of("Sad", table) == "sad"
    assert mood_of("melancholic", table) == "sad"
    assert mood_of("  Chill ", table) == "relaxed"
    assert mood_of("Laid-Back", table) == "relaxed"
    assert mood_of("laid_back", table) == "relaxed"
    assert mood_of("Aggressive", table) == "angry"
    assert mood_of("upbeat", table) == "happy"


def test_several_values_count_when_they_agree() -> None:
    table = word_table()
    assert mood_of("Sad; Melancholic", table) == "sad"
    assert mood_of("sad/happy", table) is None  # they disagree: not a label
    assert mood_of("sad; epic", table) is None  # one unknown word: not a label


def test_words_on_one_axis_only_are_not_guessed() -> None:
    table = word_table()
    for word in ("energetic", "dark", "epic", "intense", ""):
        assert mood_of(word, table) is None


def test_the_option_adds_and_overrides_words() -> None:
    table = word_table({"Epic": "happy", "blue": "relaxed"})
    assert mood_of("epic", table) == "happy"
    assert mood_of("Blue", table) == "relaxed"


def test_labels_list_the_words_they_skip() -> None:
    labels = read_labels(
        [("a", "sad"), ("b", "epic"), ("c", "Epic"), ("d", "chill"), ("e", "epic")], word_table()
    )
    assert labels.moods == [("a", "sad"), ("d", "relaxed")]
    assert labels.skipped == {"epic": 2, "Epic": 1}
    assert labels.counts() == {"happy": 0, "angry": 0, "sad": 1, "relaxed": 1}


def test_every_word_maps_to_one_mood_only() -> None:
    seen: dict[str, str] = {}
    for mood, words in SYNONYMS.items():
        assert mood in fields.MOODS
        for word in words:
            assert seen.setdefault(word, mood) == mood, word
            assert word not in fields.MOODS


def test_the_settings_agree_with_the_fields_moods() -> None:
    assert settings.MOOD_NAMES == fields.MOODS


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("epic", "use a mapping of words to moods"),
        ({"epic": "glorious"}, "maps 'epic' to 'glorious'; map words to happy, angry"),
        ({"epic": 3}, "maps 'epic' to 3"),
    ],
)
def test_a_bad_mood_words_option_is_one_line(value: object, message: str) -> None:
    with pytest.raises(settings.SettingsError, match=message):
        settings._mood_words("mood_words", value)


def test_the_option_reads_a_mapping() -> None:
    assert settings._mood_words("mood_words", {"Epic": " Happy "}) == {"Epic": "happy"}
    assert settings._mood_words("mood_words", None) == {}


def test_a_mood_marked_as_set_by_hand_stays_the_listeners() -> None:
    analysed = {"mood": "sad", **{c: 0.1 for c in fields.PROBABILITY_FIELDS.values()}}
    analysed[fields.PROBABILITY_FIELDS["sad"]] = 0.7
    assert not fields.has_user_mood(analysed)  # the plugin's own mood
    assert fields.has_user_mood({**analysed, fields.MOOD_BY_HAND: True})
    assert fields.has_user_mood({**analysed, "mood": "happy"})
    assert not fields.has_user_mood({**analysed, "mood": "", fields.MOOD_BY_HAND: True})
