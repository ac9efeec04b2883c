"""PSSS: probability-based semantic similarity score, P("these show the same thing") in [0, 1].

Backends by name (CompressAI-style registry):

- ``classical`` (CPU default, no weights): a logistic model over three image statistics -
  structural similarity of small grey thumbnails, colour-histogram intersection and the share of
  ORB features that match - calibrated on pairs from the bundled real clips (same shot = yes,
  across a hard cut = no); see ``CLASSICAL_CALIBRATION``.
- ``mllm:<HF id or local path>``: a vision-language model (``AutoProcessor`` +
  ``AutoModelForImageTextToText``; LLaVA / Qwen2-VL / InternVL-style chat templates) asked the
  LGVSC paper's question; softmax over the "Yes"/"No" token logits at the first answer position.

The paper's scores: S_abs = P(Yes), S_rel = P(No) - P(Yes) = 1 - 2 P(Yes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from semantic.vlm import VisionLanguageModel

FOCI = {"general": "General", "main object": "Main Object", "background": "Background"}
QUESTION = "Determine whether they are similar from the perspective of {focus}, use yes or no."


class PsssError(ValueError):
    pass


def s_rel(p_yes: np.ndarray | float) -> np.ndarray | float:
    return 1.0 - 2.0 * np.asarray(p_yes) if isinstance(p_yes, np.ndarray) else 1.0 - 2.0 * p_yes


class PsssScorer(Protocol):
    name: str

    def score(self, pairs: list[tuple[np.ndarray, np.ndarray]], focus: str = "general") -> np.ndarray:
        """P(Yes) for each (frame_a, frame_b) pair of RGB uint8 frames."""
        ...


def _focus(focus: str) -> str:
    try:
        return FOCI[focus.lower()]
    except KeyError:
        raise PsssError(f"unknown PSSS focus {focus!r}; known: {', '.join(FOCI)}") from None


# ---------------------------------------------------------------------------------------------
# classical
# ---------------------------------------------------------------------------------------------

# Logistic weights over (structure, colour, matches) and bias, fitted by
# tools/calibrate_psss.py on same-shot and cross-cut pairs of bikes.mp4 and bigbuckbunny.mp4
# (and clips concatenated from them). Rerun it to refit; it prints the fit and its accuracy.
CLASSICAL_CALIBRATION = (14.82, 15.72, 6.11, -11.93)  # held-out accuracy 0.975, Brier 0.014
THUMB = 64
PSSS_WIDTH = 320  # frames are compared at this width (ORB features; callers shrink to it first)


@dataclass(frozen=True)
class _Features:
    grey: np.ndarray  # THUMB x THUMB float32
    hist: np.ndarray  # normalized HSV histogram
    keypoints: int
    descriptors: np.ndarray | None


class ClassicalPsss:
    """Deterministic CPU PSSS from image statistics; focus does not change it (no semantics)."""

    name = "classical"

    def __init__(self, calibration: tuple[float, float, float, float] = CLASSICAL_CALIBRATION) -> None:
        self.weights = np.asarray(calibration[:3], dtype=np.float64)
        self.bias = float(calibration[3])
        self._orb = cv2.ORB_create(nfeatures=300, fastThreshold=10)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)

    def features(self, frame: np.ndarray) -> _Features:
        grey_full = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        scale = PSSS_WIDTH / grey_full.shape[1]
        small = cv2.resize(grey_full, (PSSS_WIDTH, max(8, round(grey_full.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
        grey = cv2.resize(grey_full, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        hsv = cv2.cvtColor(cv2.resize(frame, (THUMB, THUMB), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [12, 4, 4], [0, 180, 0, 256, 0, 256]).reshape(-1)
        hist /= max(float(hist.sum()), 1.0)
        keypoints, descriptors = self._orb.detectAndCompute(small, None)
        return _Features(grey, hist, len(keypoints), descriptors)

    def statistics(self, a: _Features, b: _Features) -> np.ndarray:
        structure = _ssim_small(a.grey, b.grey)
        colour = float(np.minimum(a.hist, b.hist).sum())
        if a.descriptors is None or b.descriptors is None or min(a.keypoints, b.keypoints) < 8:
            matches = 0.0
        else:
            good = [m for m in self._matcher.match(a.descriptors, b.descriptors) if m.distance < 40]
            matches = len(good) / min(a.keypoints, b.keypoints)
        return np.array([structure, colour, matches])

    def probability(self, stats: np.ndarray) -> float:
        return float(1.0 / (1.0 + np.exp(-(self.weights @ stats + self.bias))))

    def score(self, pairs: list[tuple[np.ndarray, np.ndarray]], focus: str = "general") -> np.ndarray:
        _focus(focus)
        return np.array([self.probability(self.statistics(self.features(a), self.features(b))) for a, b in pairs])


def _ssim_small(a: np.ndarray, b: np.ndarray) -> float:
    blur = lambda x: cv2.GaussianBlur(x, (7, 7), 1.5)  # noqa: E731
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(np.clip(ssim.mean(), -1, 1))


# ---------------------------------------------------------------------------------------------
# mllm
# ---------------------------------------------------------------------------------------------


class MllmPsss:
    """PSSS from a vision-language model: P(Yes) vs P(No) for the paper's question."""

    def __init__(self, model_id: str, device: str | None = None, batch_size: int = 4) -> None:
        self.name = f"mllm:{model_id}"
        self.vlm = VisionLanguageModel.load(model_id, device)
        self.batch_size = batch_size
        tokenizer = self.vlm.processor.tokenizer
        tokenizer.padding_side = "left"  # the answer position is then the last one for every row
        self.yes_ids = _token_ids(tokenizer, ("Yes", "yes", " Yes", " yes"))
        self.no_ids = _token_ids(tokenizer, ("No", "no", " No", " no"))
        if not self.yes_ids or not self.no_ids:
            raise PsssError(f"{model_id}: tokenizer has no single-token Yes/No")

    def score(self, pairs: list[tuple[np.ndarray, np.ndarray]], focus: str = "general") -> np.ndarray:
        import torch

        prompt = self.vlm.prompt(2, QUESTION.format(focus=_focus(focus)))
        out = []
        for i in range(0, len(pairs), self.batch_size):
            chunk = pairs[i : i + self.batch_size]
            inputs = self.vlm.inputs([img for pair in chunk for img in pair], [prompt] * len(chunk))
            with torch.no_grad():
                logits = self.vlm.model(**inputs).logits[:, -1, :].float()
            yes = torch.logsumexp(logits[:, self.yes_ids], dim=1)
            no = torch.logsumexp(logits[:, self.no_ids], dim=1)
            out.append(torch.sigmoid(yes - no).cpu().numpy())  # softmax over {Yes, No}
        return np.concatenate(out) if out else np.zeros(0)


def _token_ids(tokenizer, words: tuple[str, ...]) -> list[int]:  # noqa: ANN001
    ids = []
    for word in words:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) == 1 and encoded[0] != tokenizer.unk_token_id and encoded[0] not in ids:
            ids.append(encoded[0])
    return ids


def get_psss(name: str) -> PsssScorer:
    if name == "classical":
        return ClassicalPsss()
    if name.startswith("mllm:") and len(name) > 5:
        return MllmPsss(name[5:])
    raise PsssError(f"unknown PSSS backend {name!r}; known: classical, mllm:<HF id or local path>")
