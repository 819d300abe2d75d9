"""Vowel formants for ``jacobs1991``: Peterson & Barney (1952), read or synthesised.

* :func:`load_praat_csv`: the four vowels [i] [ɪ] [a] [ʌ] (``iy ih aa ah``) from a
  table exported from Praat (``Create formant table (Peterson & Barney 1952)``,
  then ``Save as comma-separated file``; columns ``Type, Sex, Speaker, Vowel, IPA,
  F0, F1, F2, F3``);
* :func:`synthetic_vowels`: 76 speakers x 4 vowels x 2 repetitions drawn around
  P&B's published mean formants with a per-speaker, per-speaker-vowel and
  per-token log-normal spread (``SPREAD``);
* :func:`speaker_split`: whole speakers train, the rest test;
  :class:`Normaliser`: input scaling fitted on the training tokens.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "GROUPS",
    "NORMALISATIONS",
    "PB_MEAN_FORMANTS",
    "SPLITS",
    "SPREAD",
    "VOWELS",
    "VOWEL_LABELS",
    "Normaliser",
    "VowelData",
    "load_praat_csv",
    "load_vowels",
    "speaker_split",
    "synthetic_vowels",
]

VOWELS = ("iy", "ih", "aa", "ah")
"""Praat / Peterson & Barney codes of the four vowels, in class order."""
VOWEL_LABELS = ("[i]", "[ɪ]", "[a]", "[ʌ]")
REQUIRED_COLUMNS = ("Type", "Speaker", "Vowel", "F1", "F2")
GROUPS = (("m", "men", 33), ("w", "women", 28), ("c", "children", 15))
"""Peterson & Barney's speaker groups in speaker-number order: (code, name, count)."""

# Mean F1 and F2 (Hz) of Peterson & Barney (1952), Table II ("averages of fundamental
# and formant frequencies"), for heed, hid, hod, hud. The pb52.csv token means agree
# within 3% (e.g. men iy 267/2294, children aa 1030/1383).
PB_MEAN_FORMANTS: dict[str, dict[str, tuple[float, float]]] = {
    "m": {"iy": (270, 2290), "ih": (390, 1990), "aa": (730, 1090), "ah": (640, 1190)},
    "w": {"iy": (310, 2790), "ih": (430, 2480), "aa": (850, 1220), "ah": (760, 1400)},
    "c": {"iy": (370, 3200), "ih": (530, 2730), "aa": (1030, 1370), "ah": (850, 1590)},
}
# Log-normal spread of the synthetic tokens around those means, SD of ln(F) for
# (F1, F2). P&B published means, not spreads; these come from a variance
# decomposition of the 4 vowels' tokens in pb52.csv (per speaker: a vocal-tract
# factor shared by the speaker's vowels, correlated between F1 and F2; per speaker
# and vowel; per token).
SPREAD = {
    "speaker": (0.075, 0.052),
    "speaker_correlation": 0.35,
    "speaker_vowel": (0.064, 0.042),
    "token": (0.070, 0.037),
}
REPETITIONS = 2
NORMALISATIONS = ("standardise", "log", "khz")
SPLITS = ("number", "random")


@dataclass(frozen=True)
class VowelData:
    """Formant tokens of the four vowels.

    Attributes:
        formants: float64[N, 2], F1 and F2 in Hz.
        labels: int64[N], class index into ``VOWELS``.
        speakers: int64[N], speaker number.
        groups: str[N], ``m``, ``w`` or ``c`` (men, women, children).
        source: where the tokens came from.
    """

    formants: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    groups: np.ndarray
    source: str


def load_praat_csv(path: str | Path) -> VowelData:
    """Read the four vowels from a Peterson & Barney table exported from Praat.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a required column (``REQUIRED_COLUMNS``) or one of the four vowels
            is missing, or a value does not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no vowel table at {str(path)!r}; export one from Praat (see the module doc) "
            "or leave --data at 'synthetic'"
        )
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ValueError(
                f"{str(path)!r} lacks the column(s) {missing}; it has {columns}. Expected a "
                "Praat export of 'Create formant table (Peterson & Barney 1952)' with columns "
                "Type,Sex,Speaker,Vowel,IPA,F0,F1,F2,F3"
            )
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    rows = [r for r in rows if r["Vowel"] in VOWELS]
    present = {r["Vowel"] for r in rows}
    absent = [v for v in VOWELS if v not in present]
    if absent:
        raise ValueError(
            f"{str(path)!r} has no rows of the vowel(s) {absent} (column Vowel); this "
            f"experiment needs all of {list(VOWELS)}"
        )
    try:
        formants = np.array([[float(r["F1"]), float(r["F2"])] for r in rows])
        speakers = np.array([int(r["Speaker"]) for r in rows], dtype=np.int64)
    except ValueError as exc:
        raise ValueError(
            f"{str(path)!r}: a Speaker, F1 or F2 value does not parse: {exc}"
        ) from None
    if not np.all(np.isfinite(formants) & (formants > 0)):
        raise ValueError(f"{str(path)!r}: F1 and F2 must be positive numbers (Hz)")
    return VowelData(
        formants=formants,
        labels=np.array([VOWELS.index(r["Vowel"]) for r in rows], dtype=np.int64),
        speakers=speakers,
        groups=np.array([r["Type"] for r in rows]),
        source=str(path),
    )


def synthetic_vowels(seed: int = 1991) -> VowelData:
    """Peterson & Barney-like tokens drawn around the published means (see ``SPREAD``).

    76 speakers numbered 1-76 (33 men, 28 women, 15 children), each saying each of the
    four vowels ``REPETITIONS`` times: ``ln F = ln mean(group, vowel) + speaker +
    speaker_vowel + token``, Gaussian terms with the SDs of ``SPREAD``, rounded to Hz.
    """
    rng = np.random.default_rng(seed)
    sd_speaker = np.array(SPREAD["speaker"])
    rho = SPREAD["speaker_correlation"]
    cov = np.outer(sd_speaker, sd_speaker) * np.array([[1.0, rho], [rho, 1.0]])
    formants, labels, speakers, groups = [], [], [], []
    number = 0
    for code, _, count in GROUPS:
        for _ in range(count):
            number += 1
            speaker_shift = rng.multivariate_normal(np.zeros(2), cov)
            for k, vowel in enumerate(VOWELS):
                mean = np.log(np.array(PB_MEAN_FORMANTS[code][vowel], dtype=np.float64))
                centre = mean + speaker_shift + rng.normal(0.0, SPREAD["speaker_vowel"])
                for _ in range(REPETITIONS):
                    formants.append(np.round(np.exp(centre + rng.normal(0.0, SPREAD["token"]))))
                    labels.append(k)
                    speakers.append(number)
                    groups.append(code)
    return VowelData(
        formants=np.array(formants),
        labels=np.array(labels, dtype=np.int64),
        speakers=np.array(speakers, dtype=np.int64),
        groups=np.array(groups),
        source=f"synthetic (Peterson & Barney means, seed {seed})",
    )


def load_vowels(data: str = "synthetic", data_seed: int = 1991) -> VowelData:
    """``synthetic`` tokens (seeded by ``data_seed``) or the Praat CSV at path ``data``."""
    return synthetic_vowels(data_seed) if data == "synthetic" else load_praat_csv(data)


def speaker_split(
    data: VowelData, train_speakers: int = 50, split: str = "number", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and test tokens: ``train_speakers`` whole speakers train.

    ``split="number"``: speakers sorted by number, the first ones train;
    ``"random"``: speakers shuffled with ``seed``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    ids = np.unique(data.speakers)
    if not 1 <= train_speakers < ids.size:
        raise ValueError(
            f"train_speakers must be in [1, {ids.size - 1}] ({ids.size} speakers in "
            f"{data.source}), got {train_speakers}"
        )
    if split == "random":
        ids = np.random.default_rng(seed).permutation(ids)
    train = np.isin(data.speakers, ids[:train_speakers])
    return np.flatnonzero(train), np.flatnonzero(~train)


@dataclass(frozen=True)
class Normaliser:
    """Input scaling fitted on the training tokens: ``(f(F) - shift) / scale``."""

    mode: str
    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, formants: np.ndarray, mode: str = "standardise") -> Normaliser:
        if mode not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {mode!r}")
        if mode == "khz":
            return cls(mode, np.zeros(2), np.full(2, 1000.0))
        values = np.log(formants) if mode == "log" else formants
        return cls(mode, values.mean(0), values.std(0))

    def __call__(self, formants: np.ndarray) -> np.ndarray:
        values = np.log(formants) if self.mode == "log" else formants
        return (values - self.shift) / self.scale
