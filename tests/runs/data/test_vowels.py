"""Vowels: the Praat export of Peterson & Barney, the synthetic set, the speaker split and
the input scaling."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from colonylab.runs.data.vowels import (
    GROUPS,
    PB_MEAN_FORMANTS,
    VOWELS,
    Normaliser,
    load_praat_csv,
    load_vowels,
    speaker_split,
    synthetic_vowels,
)

PB52 = Path(__file__).parents[3].parent / "shared/data/pb52.csv"
needs_pb52 = pytest.mark.skipif(
    not PB52.is_file(), reason=f"the Praat export of Peterson & Barney is not at {PB52}"
)
HEADER = ["Type", "Sex", "Speaker", "Vowel", "IPA", "F0", "F1", "F2", "F3"]


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@needs_pb52
def test_loads_the_praat_export():
    data = load_praat_csv(PB52)
    assert data.formants.shape == (76 * 4 * 2, 2)
    assert sorted(np.unique(data.labels).tolist()) == [0, 1, 2, 3]
    assert np.unique(data.speakers).tolist() == list(range(1, 77))
    assert [int((data.groups == g).sum()) // 8 for g, _, _ in GROUPS] == [33, 28, 15]
    # per-group means agree with the published Peterson & Barney means used by the
    # synthetic set (within 3%)
    for code, _, _ in GROUPS:
        for k, vowel in enumerate(VOWELS):
            sel = (data.groups == code) & (data.labels == k)
            published = np.array(PB_MEAN_FORMANTS[code][vowel])
            assert np.all(np.abs(data.formants[sel].mean(0) / published - 1) < 0.03)


@needs_pb52
def test_speaker_split_is_disjoint_with_50_training_speakers():
    data = load_praat_csv(PB52)
    train, test = speaker_split(data, 50)
    train_speakers = set(data.speakers[train].tolist())
    test_speakers = set(data.speakers[test].tolist())
    assert len(train_speakers) == 50 and len(test_speakers) == 26
    assert not train_speakers & test_speakers
    assert train_speakers == set(range(1, 51))  # by speaker number
    assert len(train) + len(test) == len(data.labels)
    train_r, _ = speaker_split(data, 50, "random", seed=3)
    assert len(set(data.speakers[train_r].tolist())) == 50
    assert set(data.speakers[train_r].tolist()) != train_speakers
    with pytest.raises(ValueError, match="train_speakers"):
        speaker_split(data, 76)


def test_missing_column_and_missing_vowel_are_named(tmp_path):
    rows = [["m", "m", 1, v, "i", 100, 300, 2000, 2500] for v in VOWELS]
    no_f2 = _write(
        tmp_path / "a.csv",
        [h for h in HEADER if h != "F2"],
        [r[:7] + r[8:] for r in rows],
    )
    with pytest.raises(ValueError, match=r"\['F2'\]"):
        load_praat_csv(no_f2)
    no_ah = _write(tmp_path / "b.csv", HEADER, rows[:3])
    with pytest.raises(ValueError, match=r"\['ah'\]"):
        load_praat_csv(no_ah)
    bad = _write(tmp_path / "c.csv", HEADER, rows[:3] + [["m", "m", 1, "ah", "v", 1, "x", 1, 1]])
    with pytest.raises(ValueError, match="does not parse"):
        load_praat_csv(bad)
    with pytest.raises(FileNotFoundError, match="synthetic"):
        load_praat_csv(tmp_path / "absent.csv")
    ok = load_praat_csv(_write(tmp_path / "d.csv", HEADER, rows))
    assert ok.labels.tolist() == [0, 1, 2, 3]


def test_synthetic_vowels_are_seeded_and_shaped_like_peterson_barney():
    a, b, c = synthetic_vowels(7), synthetic_vowels(7), synthetic_vowels(8)
    np.testing.assert_array_equal(a.formants, b.formants)
    assert not np.array_equal(a.formants, c.formants)
    assert a.formants.shape == (76 * 8, 2)
    assert np.bincount(a.labels).tolist() == [152] * 4
    assert np.unique(a.speakers).tolist() == list(range(1, 77))
    assert (a.groups[a.speakers == 34] == "w").all() and (a.groups[a.speakers == 62] == "c").all()
    for code, _, _ in GROUPS:
        for k, vowel in enumerate(VOWELS):
            sel = (a.groups == code) & (a.labels == k)
            ratio = a.formants[sel].mean(0) / np.array(PB_MEAN_FORMANTS[code][vowel])
            assert np.all(np.abs(ratio - 1) < 0.12), (code, vowel, ratio)


def test_normaliser_uses_the_training_set_only():
    data = synthetic_vowels(1)
    train, test = speaker_split(data, 50)
    norm = Normaliser.fit(data.formants[train], "standardise")
    z = norm(data.formants[train])
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-9)
    assert np.abs(norm(data.formants[test]).mean(0)).max() > 0.1  # children are in the test set
    np.testing.assert_allclose(
        Normaliser.fit(data.formants, "khz")(np.array([[500.0, 2000.0]])), [[0.5, 2.0]]
    )


def test_load_vowels_picks_the_source(tmp_path):
    assert load_vowels("synthetic", 3).source == synthetic_vowels(3).source
    with pytest.raises(FileNotFoundError, match="no vowel table"):
        load_vowels(str(tmp_path / "missing.csv"))
