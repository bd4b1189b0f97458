"""Which simulator settings a reward table measures: designs over the 8 binary parameters.

* ``explicit``: a list of settings (keys, indices or presets);
* ``subgrid``: every combination of chosen parameters, the others fixed at given values;
* ``full``: all 256 settings (the paper's table);
* ``ff16`` / ``ff32``: regular two-level fractional factorials 2^(8-4) and 2^(8-3) of resolution IV
  (every main effect is free of two-factor interactions; two-factor interactions are aliased with
  each other), from named generators (Montgomery, *Design and Analysis of Experiments*, table of
  minimum-aberration designs);
* ``resv64``: the 2^(8-2) fraction of resolution V (64 settings): main effects and every two-factor
  interaction are free of each other, so a model of main effects + two-factor interactions fitted
  on it predicts the other 192 settings (:mod:`t2s_lib.rewards.table256`).

Domain randomisation (everything varies) and all-off are always added, so every table carries the
two anchors of the paper. Factors A..H are the 8 parameters in the paper's order
(:data:`t2s_lib.settings.PARAMETERS`: pose_rot, pose_scale, lighting_intensity, lighting_color,
lighting_dir, blur, backgr, materials); level +1 = the parameter varies.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..errors import T2SError
from ..settings import PARAMETERS, PRESETS, SimSetting, resolve_setting

FACTORS = "ABCDEFGH"

#: Generators of the fractional factorials: added factor -> product of base factors.
GENERATORS: dict[str, dict[str, str]] = {
    # 2^(8-4), 16 runs, resolution IV: E = BCD, F = ACD, G = ABC, H = ABD
    "ff16": {"E": "BCD", "F": "ACD", "G": "ABC", "H": "ABD"},
    # 2^(8-3), 32 runs, resolution IV: F = ABC, G = ABD, H = BCDE
    "ff32": {"F": "ABC", "G": "ABD", "H": "BCDE"},
    # 2^(8-2), 64 runs, resolution V: G = ABCD, H = ABEF (I = ABCDG = ABEFH = CDEFGH)
    "resv64": {"G": "ABCD", "H": "ABEF"},
}
DESIGNS = ("explicit", "subgrid", "full", "ff16", "ff32", "resv64")


def fractional_factorial(generators: Mapping[str, str]) -> np.ndarray:
    """Runs x 8 matrix of levels -1/+1: a full factorial in the base factors, the added ones by the generators."""
    added = set(generators)
    base = [f for f in FACTORS if f not in added]
    rows = []
    for levels in itertools.product((-1, 1), repeat=len(base)):
        value = dict(zip(base, levels))
        for f in FACTORS:
            if f in generators:
                value[f] = int(np.prod([value[b] for b in generators[f]]))
        rows.append([value[f] for f in FACTORS])
    return np.asarray(rows, dtype=np.int64)


def defining_words(generators: Mapping[str, str]) -> list[str]:
    """All words of the defining relation I = ... (products of the generator words, letters mod 2)."""
    gens = [frozenset(f + w) for f, w in generators.items()]
    words = set()
    for r in range(1, len(gens) + 1):
        for combo in itertools.combinations(gens, r):
            word = frozenset()
            for g in combo:
                word = word ^ g
            if word:
                words.add("".join(sorted(word)))
    return sorted(words, key=lambda w: (len(w), w))


def resolution(generators: Mapping[str, str]) -> int:
    """Design resolution: the length of the shortest word of the defining relation."""
    return min(len(w) for w in defining_words(generators))


def resolution_from_matrix(x: np.ndarray) -> int:
    """Resolution measured on the design matrix itself: the smallest k such that some product of k
    columns is constant (aliased with the mean)."""
    n = x.shape[1]
    for k in range(1, n + 1):
        for cols in itertools.combinations(range(n), k):
            if np.all(np.prod(x[:, cols], axis=1) == np.prod(x[0, cols])):
                return k
    return n + 1


def _setting(row: Sequence[int]) -> SimSetting:
    return SimSetting(**{p: bool(v > 0) for p, v in zip(PARAMETERS, row)})


def _check_parameters(names: Iterable[str], where: str) -> None:
    unknown = [n for n in names if n not in PARAMETERS]
    if unknown:
        raise T2SError(f"{where}: unknown parameter(s) {unknown}", f"use some of: {', '.join(PARAMETERS)}")


def design_settings(design: str, *, settings: Sequence[str | int] = (), vary: Sequence[str] = (),
                    fixed: Mapping[str, bool] | None = None, anchors: bool = True) -> list[str]:
    """The setting keys of a design (anchors DR and all-off added first), without duplicates."""
    if design not in DESIGNS:
        raise T2SError(f"unknown design {design!r}", f"use one of: {', '.join(DESIGNS)}")
    if design == "explicit":
        if not settings and not anchors:
            raise T2SError("design 'explicit' needs a list of settings", "give settings: [key or preset, ...]")
        chosen = [resolve_setting(s) for s in settings]  # none: the two anchors alone
    elif design == "subgrid":
        _check_parameters(vary, "subgrid vary")
        _check_parameters(fixed or {}, "subgrid fixed")
        if not vary:
            raise T2SError("design 'subgrid' needs the parameters to vary", "give vary: [backgr, materials, ...]")
        both = sorted(set(vary) & set(fixed or {}))
        if both:
            raise T2SError(f"subgrid: parameter(s) {both} are both varied and fixed", "list each in one of the two")
        base = SimSetting(**{k: bool(v) for k, v in (fixed or {}).items()})
        chosen = [base.replace(**dict(zip(vary, bits))) for bits in itertools.product((False, True), repeat=len(vary))]
    elif design == "full":
        chosen = [SimSetting.from_index(i) for i in range(256)]
    else:
        chosen = [_setting(row) for row in fractional_factorial(GENERATORS[design])]
    if anchors:
        chosen = [PRESETS["domain_randomization"], PRESETS["all_off"], *chosen]
    return list(dict.fromkeys(s.key for s in chosen))
