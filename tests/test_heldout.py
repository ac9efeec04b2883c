"""Every command and keyframe mode on clips nobody tuned to (tools/heldout_corpus.py): the exact
frame count, or one clear line with exit status 2; never a crash, a hang or a bare message.
The default suite runs a sample; `-m slow` the whole matrix (tools/corpus_matrix.py)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from semantic.video_io import read_video
from tools.corpus_matrix import BUDGETS, MODES, Case, cases, run_case, run_matrix
from tools.heldout_corpus import CLIPS, build_corpus

SAMPLE = [
    Case("photo_pan_cut", "encode", "psss", "cbr=1e-2"),  # the budget fill's KeyError
    Case("photo_pan_cut", "encode", "error-model", "cbr=1e-3"),
    Case("odd_33x17_life", "encode", "error-model", "bytes=3000"),  # noise no 16-pixel WebP fits
    Case("odd_33x17_life", "encode", "psss", "bytes=1"),
    Case("one_frame", "encode", "psss", "bytes=1000000"),
    Case("one_frame", "encode", "error-model", "cbr=1e-4"),
    Case("tiny_16x16", "encode", "error-model", "bytes=3000"),
    pytest.param(Case("portrait_181x321", "loopback", "-", "cbr=1e-3"), marks=pytest.mark.flowgraph),
]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("heldout")


@pytest.mark.parametrize("case", SAMPLE, ids=lambda c: f"{c.clip}-{c.command}-{c.mode}-{c.budget}")
def test_sample_of_the_matrix(case: Case, corpus_dir: Path) -> None:
    corpus = build_corpus(corpus_dir, [case.clip])
    outcome = run_case(case, corpus.clips[case.clip], corpus.truth[case.clip])
    assert outcome.status in ("ok", "refused"), outcome.detail
    if outcome.status == "refused":
        assert "stream header: nothing can be sent" in outcome.detail  # the only refusal: no room for the header


def test_clips_are_what_their_ground_truth_says(corpus_dir: Path) -> None:
    corpus = build_corpus(corpus_dir, ["photo_pan_cut", "odd_639x359_objects"])
    for name, path in corpus.clips.items():
        truth, info = corpus.truth[name], read_video(path).info
        assert (info.width, info.height, info.frames, info.fps) == (truth["width"], truth["height"],
                                                                     truth["frames"], Fraction(truth["fps"]))
    assert corpus.truth["photo_pan_cut"]["cuts"] == [72]


@pytest.mark.slow
@pytest.mark.flowgraph
@pytest.mark.timeout(3600)  # the whole matrix in one test: 11 min on 2 idle cores (README)
def test_whole_matrix(corpus_dir: Path) -> None:
    """14 clips x 2 keyframe modes x 7 budgets through encode, inspect, decode and evaluate, a
    loopback of every clip and two send/receive pairs."""
    todo = cases([c.name for c in CLIPS], BUDGETS, MODES, send_receive=("photo_pan_cut", "odd_639x359_objects"))
    failed = [o for o in run_matrix(corpus_dir, todo, workers=2) if o.status == "FAIL"]
    assert not failed, "\n".join(f"{o.clip} {o.command} {o.mode} {o.budget}: {o.detail}" for o in failed)
