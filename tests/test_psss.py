"""PSSS backends: the calibrated classical default and a real (tiny, random) vision-language model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semantic.keyframes import candidate_frames, select_keyframes_psss
from semantic.psss import ClassicalPsss, PsssError, get_psss, s_rel
from semantic.video_io import read_video


@pytest.fixture(scope="module")
def bikes_frames(bikes: Path) -> np.ndarray:
    return read_video(bikes).frames


def test_classical_range_and_meaning(bikes_frames: np.ndarray) -> None:
    scorer = ClassicalPsss()
    same_shot = scorer.score([(bikes_frames[40], bikes_frames[60])])[0]  # shot 30..75
    identical = scorer.score([(bikes_frames[40], bikes_frames[40])])[0]
    across_cut = scorer.score([(bikes_frames[20], bikes_frames[40])])[0]  # cut at 30
    assert 0 <= across_cut < 0.2 < 0.8 < same_shot <= identical <= 1
    assert s_rel(across_cut) > 0.35 > s_rel(same_shot)  # the paper's keyframe rule fires only at the cut


def test_classical_is_deterministic(bikes_frames: np.ndarray) -> None:
    pairs = [(bikes_frames[i], bikes_frames[i + 7]) for i in range(0, 200, 40)]
    assert np.array_equal(ClassicalPsss().score(pairs), ClassicalPsss().score(pairs))


def test_classical_calibration_holds_on_fresh_pairs() -> None:
    """Pairs drawn with another seed than the fit: accuracy and Brier score near the fit's."""
    from tools.calibrate_psss import labelled_pairs

    pairs, labels = labelled_pairs(80, seed=11)
    p = ClassicalPsss().score(pairs)
    assert np.mean((p > 0.5) == labels) >= 0.9
    assert np.mean((p - labels) ** 2) <= 0.08


def test_unknown_backend_and_focus() -> None:
    with pytest.raises(PsssError, match="unknown PSSS backend"):
        get_psss("clip")
    with pytest.raises(PsssError, match="focus"):
        ClassicalPsss().score([], focus="sky")


def test_mllm_backend_loads_with_from_pretrained_and_scores(tiny_mllm: str, bikes_frames: np.ndarray) -> None:
    scorer = get_psss(f"mllm:{tiny_mllm}")
    assert scorer.name == f"mllm:{tiny_mllm}"
    frames = bikes_frames
    pairs = [(frames[0], frames[100]), (frames[5], frames[5]), (frames[200], frames[10])]
    batched = scorer.score(pairs, focus="main object")
    assert batched.shape == (3,) and np.all((batched > 0) & (batched < 1))
    singles = np.array([scorer.score([pair], focus="main object")[0] for pair in pairs])
    np.testing.assert_allclose(batched, singles, atol=1e-5)  # batch (left padding) equals one by one
    np.testing.assert_allclose(get_psss(f"mllm:{tiny_mllm}").score(pairs, focus="main object"), batched, atol=1e-6)
    for focus in ("general", "background"):
        assert scorer.score(pairs[:1], focus=focus).shape == (1,)


def test_paper_rule_puts_keyframes_on_every_cut(derived_clip: Path) -> None:
    """A clip built from two sources (hard cut between them, plus bikes' own cuts)."""
    video = read_video(derived_clip)
    plan, p_prev = select_keyframes_psss(video.frames, float(video.fps), None, ClassicalPsss())
    assert plan.frames[0] == 0 and plan.frames[-1] == len(video.frames) - 1
    assert plan.cuts, "the clip has hard cuts"
    for cut in plan.cuts:
        assert min(abs(k - cut) for k in plan.frames) <= 2, (cut, plan.frames)
    assert len(p_prev) == len(plan.frames) and all(0 <= p <= 1 for p in p_prev)


def test_budget_mode_fits_the_count(bikes_frames: np.ndarray) -> None:
    for count in (2, 5, 12):
        plan, _ = select_keyframes_psss(bikes_frames, 25.0, count, ClassicalPsss())
        assert len(plan.frames) == count and plan.frames[0] == 0 and plan.frames[-1] == 249
    assert candidate_frames(250, 25.0, [30])[:4] == [0, 5, 10, 15] and 30 in candidate_frames(250, 25.0, [31])


def test_budget_fill_keeps_to_the_frames_psss_scored(heldout_clip) -> None:  # noqa: ANN001
    """The encoder collects only the candidate frames (every 0.2 s, and cuts) for PSSS; a budget
    fill that picked any other frame had no picture to score (KeyError on a held-out clip)."""
    from semantic.analysis import analyse
    from semantic.keyframes import select_keyframes_psss_from

    path = heldout_clip("photo_pan_cut")  # 320x240, 24 fps, 144 frames, a hard cut at 72
    video = read_video(path)
    analysis = analyse(iter(video.frames), video.fps)
    candidates = candidate_frames(len(video.frames), float(video.fps), analysis.cuts)
    collected = {t: video.frames[t] for t in candidates}
    for count in (12, 20, len(candidates)):
        plan, p_prev = select_keyframes_psss_from(analysis.change, analysis.model_thumbs, collected,
                                                  float(video.fps), count, ClassicalPsss())
        assert set(plan.frames) <= set(candidates) and len(plan.frames) == count
        assert len(p_prev) == count
