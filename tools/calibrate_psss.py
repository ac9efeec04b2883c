"""Fit the classical PSSS calibration on real footage and report how well it separates shots.

    python -m tools.calibrate_psss [--pairs 400]

Labels: two frames of the same shot (0.2 to 3 s apart) are "same" (1); frames of different shots
(across a hard cut in one clip, or from different clips) are "different" (0). Shots come from
the hard-cut detector, checked by eye on the bundled clips. Fits a logistic regression (IRLS) on
the three statistics of ``semantic.psss.ClassicalPsss`` and prints the weights to paste into
``CLASSICAL_CALIBRATION`` with the accuracy and the Brier score on a held-out half.
"""

from __future__ import annotations

import argparse

import numpy as np

from lgvsc.sample_videos import sample_video
from semantic.keyframes import change_scores, detect_cuts, shot_ranges, thumbnails
from semantic.psss import ClassicalPsss
from semantic.video_io import read_video


def labelled_pairs(count: int, seed: int = 0) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    rng = np.random.default_rng(seed)
    clips = []
    for name in ("bikes", "bigbuckbunny"):
        video = read_video(sample_video(name))
        shots = shot_ranges(detect_cuts(change_scores(thumbnails(video.frames))), len(video.frames))
        clips.append((video, shots, float(video.fps)))
    pairs, labels = [], []
    while len(pairs) < count:
        ci = int(rng.integers(len(clips)))
        video, shots, fps = clips[ci]
        if rng.random() < 0.5:  # same shot
            lo, hi = shots[int(rng.integers(len(shots)))]
            gap = int(rng.integers(max(1, round(0.2 * fps)), max(2, round(3 * fps))))
            if hi - lo <= gap:
                continue
            a = int(rng.integers(lo, hi - gap))
            pairs.append((video.frames[a], video.frames[a + gap]))
            labels.append(1)
        else:  # different shots, same clip when it has several, else another clip
            if len(shots) > 1:
                i, j = rng.choice(len(shots), 2, replace=False)
                a = int(rng.integers(shots[i][0], shots[i][1] + 1))
                b = int(rng.integers(shots[j][0], shots[j][1] + 1))
                pairs.append((video.frames[a], video.frames[b]))
            else:
                other = clips[1 - ci][0]
                pairs.append((video.frames[int(rng.integers(len(video.frames)))],
                              other.frames[int(rng.integers(len(other.frames)))]))
            labels.append(0)
    return pairs, np.array(labels)


def fit_logistic(x: np.ndarray, y: np.ndarray, iters: int = 50, ridge: float = 1e-2) -> np.ndarray:
    xb = np.column_stack([x, np.ones(len(x))])
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + ridge * w
        hess = xb.T @ (xb * (p * (1 - p))[:, None]) + ridge * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=400)
    args = ap.parse_args()
    scorer = ClassicalPsss()
    pairs, labels = labelled_pairs(args.pairs)
    stats = np.array([scorer.statistics(scorer.features(a), scorer.features(b)) for a, b in pairs])
    half = len(stats) // 2
    w = fit_logistic(stats[:half], labels[:half])
    p = 1 / (1 + np.exp(-(stats[half:] @ w[:3] + w[3])))
    accuracy = float(np.mean((p > 0.5) == labels[half:]))
    brier = float(np.mean((p - labels[half:]) ** 2))
    print(f"CLASSICAL_CALIBRATION = ({w[0]:.2f}, {w[1]:.2f}, {w[2]:.2f}, {w[3]:.2f})")
    print(f"held-out accuracy {accuracy:.3f}, Brier score {brier:.3f} on {len(p)} pairs "
          f"({int(labels[half:].sum())} same-shot)")
    for name, col in zip(("structure", "colour", "matches"), stats.T, strict=True):
        print(f"  {name:9s} same-shot mean {col[labels == 1].mean():.3f}, different {col[labels == 0].mean():.3f}")


if __name__ == "__main__":
    main()
