"""The sub-metre aerial path of the classical detector: structure change on 8-bit RGB at about 0.5 m.

The provider routes a pair here when its GSD is at most 1 m (or unknown) and it is 8-bit RGB
(:mod:`tools.change_detection.routing`); it was the whole classical detector before the GSD-aware one, and on
LEVIR-CD-like aerial tiles it still measures far better than it.

A colour difference + Otsu mask finds everything that differs between two dates: season, soil moisture,
sun angle, shadows, a repainted roof, a pixel or two of misregistration. Against LEVIR-CD's building labels
that gives pixel F1 ≈ 0.1–0.26. This detector looks for the change the ChangeChat questions are about,
something built (or removed), with physically motivated tests whose every number is a setting:

1. **Radiometric normalisation** (``normalisation``). ``irmad``: iteratively reweighted multivariate
   alteration detection (Nielsen 2007) on 4×4 block means ranks pixels by how unchanged they are; t1 is then
   mapped onto t2 over the least-changed half only (``irmad_keep_fraction``), by matched quantiles
   (``irmad_mapping="histogram"``, undoes the non-linear tone curves of archive mosaics) or mean/std
   (``"linear"``, Canty & Nielsen 2008). A large new object therefore cannot bend the mapping, which plain
   whole-image ``histogram`` matching lets it do.
2. **Structure change**. Canny edges (lightness and chroma) that exist in one date with no edge within
   ``edge_tolerance`` pixels in the other. Edges survive illumination and colour shifts; building something
   creates outlines. Their local density (Gaussian, ``density_sigma``) above ``density_threshold``, or a
   colour change above ``colour_strong_delta`` ΔE, marks areas of change.
3. **Pixel exclusions** inside those areas: vegetation in t2 (excess green 2g−r−b of the chromaticity above
   ``vegetation_exg``: lawns, crops and seasonal greening are not construction) and shadow in t2 (lightness
   under ``shadow_ratio`` × the median: shadows move with the sun).
4. **Morphology and minimum size**: an opening (``open_radius``) removes slivers; regions under
   ``min_area`` pixels are dropped.
5. **Region tests**. (a) Same structure: the region's gradient pattern in t2 is matched against t1 by
   normalised cross-correlation, allowing ``structure_shift`` pixels of misregistration; NCC of gradient
   magnitudes ignores gain and offset, so a repainted roof, a brighter day or a shifted view of the *same*
   structure reaches ``structure_max_similarity`` and is rejected. (b) Colour: the region's mean ΔE (Lab,
   lightness weighted by ``lightness_weight``) must reach ``colour_min_delta``. (c) Structure gained: t2 must
   keep at least ``min_structure_retained`` of the region's t1 gradient energy; where structure mostly vanished
   (harvest, ploughing, a cleared site) nothing was built. Set it to 0 to report demolitions too.
6. **Detection floor**: when less than ``min_changed_fraction`` of the image survives, the pair is reported
   unchanged. Small residues are what misregistration, parallax and shadows leave behind; a classical
   detector cannot tell them from a real small change, so it does not claim one.

It marks pixels "changed" with no category (``ChangeClass.CHANGE``); it never names roads or buildings. Its
confidence is not computed here: the provider states the path's accuracy measured by ``python -m tools.lodo``.

Defaults were tuned on the four labelled LEVIR-CD crops in ``../shared/data`` (so its LEVIR-CD figure in the
README is not held out) and checked unchanged on the
five DSIFN crops; each step is a generic test, and ±20 % on the main thresholds moves LEVIR-CD grid F1 within
0.83–0.91 (``bench/bench_masks.py`` keeps the numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, Field, model_validator

from tools.pairs import ImagePair

Normalisation = Literal["irmad", "histogram", "none"]


class AerialSettings(BaseModel):
    """Every number the classical detector uses; defaults for 0.5–2 m RGB tiles (LEVIR-CD, DSIFN)."""

    normalisation: Normalisation = Field(
        "irmad", description="Radiometric normalisation of t1 to t2: irmad, histogram or none."
    )
    irmad_mapping: Literal["histogram", "linear"] = Field(
        "histogram", description="How IR-MAD's unchanged pixels map t1 to t2: weighted histograms or mean/std."
    )
    irmad_keep_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Map over this fraction of pixels IR-MAD ranks least changed (1 = p-value weights).",
    )
    irmad_iterations: int = Field(20, ge=1, le=200, description="Most IR-MAD rounds (stops when correlations settle).")
    irmad_sample_step: int = Field(4, ge=1, le=16, description="Fit IR-MAD on n×n block means (pixels).")
    smoothing_sigma: float = Field(1.0, ge=0, description="Gaussian blur before edge detection (pixels).")
    edge_low: float = Field(40.0, gt=0, description="Canny lower hysteresis threshold per Lab channel (8-bit).")
    edge_high: float = Field(100.0, gt=0, description="Canny upper hysteresis threshold per Lab channel (8-bit).")
    chroma_edges: bool = Field(True, description="Also find edges in a* and b*, not only in lightness.")
    edge_tolerance: int = Field(
        2, ge=0, le=10, description="An edge within this many pixels in the other date persists."
    )
    vanished_edge_weight: float = Field(
        1.0, ge=0, le=1, description="Weight of edges that vanished (demolition) against edges that appeared."
    )
    density_sigma: float = Field(10.0, gt=0, description="Scale of the structure-change density (pixels).")
    density_threshold: float = Field(0.08, gt=0, lt=1, description="Density above which an area changed.")
    colour_min_delta: float = Field(4.0, ge=0, description="Least mean ΔE (Lab, weighted) over a kept region.")
    colour_strong_delta: float = Field(
        25.0, gt=0, description="ΔE this large marks change by itself, without edge evidence (a recoloured area)."
    )
    lightness_weight: float = Field(0.5, ge=0, description="Weight of ΔL* against Δa*, Δb* in ΔE.")
    vegetation_exg: float = Field(0.06, description="t2 pixels with excess green 2g−r−b above this are vegetation.")
    shadow_ratio: float = Field(
        0.6, ge=0, le=1, description="t2 pixels darker than this × median lightness are shadow."
    )
    open_radius: int = Field(2, ge=0, le=10, description="Opening radius: removes slivers (pixels).")
    min_area: int = Field(40, ge=1, description="Smallest kept region (pixels; 10 m² at 0.5 m/px).")
    structure_shift: int = Field(3, ge=0, le=10, description="Misregistration allowed by the object test (pixels).")
    structure_region_only: bool = Field(
        False, description="Compare only the region and its rim, not its whole bounding box, across dates."
    )
    structure_margin: int = Field(6, ge=0, description="Context around a region in the object test (pixels).")
    structure_max_similarity: float = Field(
        0.3, ge=-1, le=1, description="Regions whose t1/t2 gradient NCC reaches this are the same structure."
    )
    min_structure_retained: float = Field(
        0.8,
        ge=0,
        description="A kept region keeps at least this share of its t1 gradient energy in t2: where structure mostly "
        "vanished (harvest, ploughing, a cleared site) nothing was built; 0 also reports demolitions.",
    )
    min_changed_fraction: float = Field(
        0.01, ge=0, lt=1, description="Below this changed fraction the pair is reported unchanged."
    )

    @model_validator(mode="after")
    def _ordered_edges(self) -> AerialSettings:
        if self.edge_low > self.edge_high:
            raise ValueError(f"edge_low {self.edge_low} must not exceed edge_high {self.edge_high}")
        return self


@dataclass
class AerialAnalysis:
    """Intermediate results of one run, for the mask, its confidence and debugging."""

    t1_normalised: np.ndarray
    density: np.ndarray
    candidate: np.ndarray
    changed: np.ndarray
    similarities: list[float]
    rejected_regions: int
    found_fraction: float
    gated: bool
    radiometric_agreement: float
    separability: float
    normalisation: str


# --- radiometric normalisation ------------------------------------------------------------------------


def _erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function for x ≥ 0 (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7)."""
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return poly * np.exp(-x * x)


def chi2_sf_3(x: np.ndarray) -> np.ndarray:
    """Survival function of χ² with 3 degrees of freedom: the no-change probability of IR-MAD on RGB."""
    x = np.maximum(x, 0.0)
    return np.clip(_erfc(np.sqrt(x / 2.0)) + np.sqrt(2.0 * x / math.pi) * np.exp(-x / 2.0), 0.0, 1.0)


def irmad_weights(
    x1: np.ndarray, x2: np.ndarray, iterations: int = 20, tol: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """IR-MAD no-change probabilities (N) and canonical correlations (3) of two N×3 pixel sets.

    Canonical correlation analysis finds the band combinations that agree most between the dates; their
    differences (MAD variates) are independent, so Σ MAD²/σ² is χ²-distributed for unchanged pixels, and
    each pixel's no-change probability reweights the next round, until the canonical correlations move less
    than ``tol`` (Canty & Nielsen's stopping rule; iterating the weights further only shrinks the variance
    estimate). A small ridge keeps grey or constant bands (a singular covariance) solvable.
    """
    n, p = x1.shape
    if p != 3:
        raise ValueError(f"IR-MAD here works on 3 bands, got {p}")
    weights = np.ones(n)
    rho = previous = np.zeros(p)
    for _ in range(iterations):
        ws = weights / max(weights.sum(), 1e-12)
        m1 = ws @ x1
        m2 = ws @ x2
        d1 = x1 - m1
        d2 = x2 - m2
        s11 = (d1 * ws[:, None]).T @ d1
        s22 = (d2 * ws[:, None]).T @ d2
        s12 = (d1 * ws[:, None]).T @ d2
        ridge = 1e-6 * max(np.trace(s11) + np.trace(s22), 1e-6)
        s11 += ridge * np.eye(p)
        s22 += ridge * np.eye(p)
        chol = np.linalg.cholesky(s11)
        chol_inv = np.linalg.inv(chol)
        s22_inv = np.linalg.inv(s22)
        rho2, u = np.linalg.eigh(chol_inv @ s12 @ s22_inv @ s12.T @ chol_inv.T)
        a = chol_inv.T @ u
        b = s22_inv @ s12.T @ a
        b /= np.sqrt(np.maximum(np.einsum("ij,jk,ki->i", b.T, s22, b), 1e-12))
        b *= np.sign(np.einsum("ij,jk,ki->i", a.T, s12, b))[None, :]
        rho = np.sqrt(np.clip(rho2, 0.0, 1.0))
        mad = d1 @ a - d2 @ b
        variance = np.maximum(2.0 * (1.0 - rho), 1e-6)
        weights = chi2_sf_3((mad**2 / variance).sum(axis=1))
        if np.abs(rho - previous).max() < tol:
            break
        previous = rho
    return weights, rho


def _normalise_irmad(t1: np.ndarray, t2: np.ndarray, s: AerialSettings) -> np.ndarray:
    """t1 mapped to t2 over IR-MAD's unchanged pixels only, so new objects cannot bend the mapping.

    ``irmad_mapping="histogram"`` matches the weighted per-band histograms (undoes non-linear tone curves
    between archive mosaics); ``"linear"`` matches weighted mean and standard deviation (Canty & Nielsen).
    """
    x1, x2 = (_block_mean(t, s.irmad_sample_step).reshape(-1, 3).astype(np.float64) for t in (t1, t2))
    try:
        weights, _ = irmad_weights(x1, x2, s.irmad_iterations)
    except np.linalg.LinAlgError:
        return _match_histograms(t1, t2)
    if weights.sum() < 1e-3 * weights.size:  # nothing looks unchanged: fall back to all pixels
        weights = np.ones_like(weights)
    if s.irmad_keep_fraction < 1.0:
        # IR-MAD's p-values have heavy tails on textured, slightly misregistered imagery; use them to rank
        # pixels and keep the least-changed fraction with equal weight.
        cut = np.quantile(weights, 1.0 - s.irmad_keep_fraction)
        weights = (weights >= cut).astype(np.float64)
    if s.irmad_mapping == "histogram":
        return _match_histograms(t1, t2, sample=(x1, x2, weights))
    ws = weights / weights.sum()
    out = np.empty(t1.shape, dtype=np.float64)
    for c in range(3):
        m1, m2 = ws @ x1[:, c], ws @ x2[:, c]
        sd1 = math.sqrt(max(ws @ (x1[:, c] - m1) ** 2, 1e-12))
        sd2 = math.sqrt(max(ws @ (x2[:, c] - m2) ** 2, 1e-12))
        gain = sd2 / sd1 if sd1 > 1e-3 else 1.0
        out[..., c] = (t1[..., c].astype(np.float64) - m1) * gain + m2
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``×``factor`` blocks: texture and a pixel or two of misregistration average out."""
    if factor <= 1:
        return image
    height, width = image.shape[:2]
    size = (max(width // factor, 1), max(height // factor, 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _histogram_quantiles(values: np.ndarray, weights: np.ndarray | None, levels: np.ndarray) -> np.ndarray:
    """Quantiles of 0–255 values from their (weighted) 256-bin histogram, interpolated within bins."""
    bins = np.clip(np.rint(values), 0, 255).astype(np.int64).ravel()
    hist = np.bincount(bins, weights=None if weights is None else weights.ravel(), minlength=256)
    cdf = np.cumsum(hist)
    cdf = cdf / cdf[-1]
    return np.interp(levels, np.concatenate([[0.0], cdf]), np.arange(-0.5, 256.0, 1.0))


QUANTILE_LEVELS = np.linspace(0.005, 0.995, 100)


def _match_histograms(
    source: np.ndarray,
    reference: np.ndarray,
    sample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Map each uint8 channel of ``source`` onto the value distribution of ``reference``.

    The mapping joins 100 matched quantiles (0.5 %…99.5 %) linearly, so it is smooth and monotone and
    cannot invent edges from a stepped look-up table. ``sample`` (source pixels N×3, reference pixels N×3,
    weights N) restricts both distributions to weighted pixels, e.g. IR-MAD's unchanged ones.
    """
    if sample is None:
        x1 = source.reshape(-1, source.shape[2])
        x2 = reference.reshape(-1, reference.shape[2])
        weights = None
    else:
        x1, x2, weights = sample
    out = np.empty_like(source)
    values = np.arange(256, dtype=np.float64)
    for c in range(source.shape[2]):
        q1 = _histogram_quantiles(x1[:, c], weights, QUANTILE_LEVELS)
        q2 = _histogram_quantiles(x2[:, c], weights, QUANTILE_LEVELS)
        q1 = np.maximum.accumulate(q1 + np.arange(q1.size) * 1e-6)  # strictly increasing for np.interp
        lut = np.interp(values, q1, q2)
        low, high = q1[0], q1[-1]  # beyond the end quantiles: continue with slope 1
        lut = np.where(values < low, q2[0] + (values - low), lut)
        lut = np.where(values > high, q2[-1] + (values - high), lut)
        out[..., c] = np.clip(np.rint(lut), 0, 255).astype(np.uint8)[source[..., c]]
    return out


def normalise(t1: np.ndarray, t2: np.ndarray, settings: AerialSettings) -> np.ndarray:
    """t1 (H×W×3 uint8) brought to t2's radiometry by the configured method."""
    if settings.normalisation == "irmad":
        return _normalise_irmad(t1, t2, settings)
    if settings.normalisation == "histogram":
        return _match_histograms(t1, t2)
    return t1.copy()


# --- the detector ---------------------------------------------------------------------------------------


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _edges(lab: np.ndarray, s: AerialSettings) -> np.ndarray:
    """Canny edges of lightness, or of lightness and both chroma channels (a colour edge on even ground)."""
    channels = range(3) if s.chroma_edges else range(1)
    found = np.zeros(lab.shape[:2], dtype=bool)
    for c in channels:
        band = np.ascontiguousarray(lab[..., c])
        if s.smoothing_sigma > 0:
            band = cv2.GaussianBlur(band, (0, 0), s.smoothing_sigma)
        found |= cv2.Canny(band, s.edge_low, s.edge_high) > 0
    return found


def _excess_green(rgb: np.ndarray) -> np.ndarray:
    """2g − r − b of the chromaticity (r+g+b = 1), smoothed: > 0 for green vegetation whatever the brightness."""
    f = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), 1.5) + 1.0
    return (2.0 * f[..., 1] - f[..., 0] - f[..., 2]) / f.sum(axis=2)


def _gradient_magnitude(lightness: np.ndarray) -> np.ndarray:
    g = cv2.GaussianBlur(lightness.astype(np.float32), (0, 0), 1.0)
    return cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))


def structure_similarity(
    g1: np.ndarray,
    g2: np.ndarray,
    box: tuple[int, int, int, int],
    shift: int,
    mask: np.ndarray | None = None,
) -> float:
    """Best NCC of t2's gradient patch ``box`` (x0, y0, x1, y1) against t1 within ±``shift`` pixels.

    ``mask`` (the box's shape) limits the comparison to a region and its rim, so unchanged neighbours inside
    the bounding box (a road beside a new house) do not vote. Flat in both dates counts as the same structure
    (1.0); flat in one date only as none in common (0.0).
    """
    height, width = g1.shape
    x0, y0, x1, y1 = box
    template = g2[y0:y1, x0:x1]
    sx0, sy0 = max(x0 - shift, 0), max(y0 - shift, 0)
    sx1, sy1 = min(x1 + shift, width), min(y1 + shift, height)
    search = g1[sy0:sy1, sx0:sx1]
    inside = template if mask is None else template[mask > 0]
    flat_t2 = inside.size == 0 or float(inside.std()) < 1e-3
    flat_t1 = float(search.std()) < 1e-3
    if flat_t2 or flat_t1:
        return 1.0 if flat_t2 and flat_t1 else 0.0
    if mask is None:
        result = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED)
    else:
        result = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED, mask=mask.astype(np.float32))
    finite = result[np.isfinite(result)]
    return float(np.clip(finite.max(), -1.0, 1.0)) if finite.size else 0.0


def _otsu_separability(values: np.ndarray) -> float:
    """Otsu's η = σ²_between / σ²_total of a map: near 1 for a clean two-level map, near 0 for noise."""
    top = float(values.max())
    if top <= 0:
        return 0.0
    scaled = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
    thresh, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    p = np.bincount(scaled.ravel(), minlength=256).astype(np.float64)
    p /= p.sum()
    levels = np.arange(256)
    mean = (p * levels).sum()
    total = float((p * (levels - mean) ** 2).sum())
    k = int(thresh)
    w0 = p[: k + 1].sum()
    w1 = 1.0 - w0
    if total <= 0 or w0 <= 0 or w1 <= 0:
        return 0.0
    mu0 = (p[: k + 1] * levels[: k + 1]).sum() / w0
    mu1 = (p[k + 1 :] * levels[k + 1 :]).sum() / w1
    return float(w0 * w1 * (mu0 - mu1) ** 2 / total)


def _agreement(l1: np.ndarray, l2: np.ndarray, unchanged: np.ndarray) -> float:
    """Pearson correlation of the two dates' lightness over the pixels left unchanged (0 when undefined)."""
    a = l1[unchanged].astype(np.float64)
    b = l2[unchanged].astype(np.float64)
    if a.size < 16 or a.std() < 1e-6 or b.std() < 1e-6:
        return 0.0
    return float(max(0.0, np.corrcoef(a, b)[0, 1]))


def analyse_aerial(pair: ImagePair, settings: AerialSettings | None = None) -> AerialAnalysis:
    """Run every step of the detector on ``pair`` and keep the intermediate maps."""
    s = settings or AerialSettings()
    t2 = pair.t2
    t1 = normalise(pair.t1, t2, s)
    lab1 = cv2.cvtColor(t1, cv2.COLOR_RGB2LAB)
    lab2 = cv2.cvtColor(t2, cv2.COLOR_RGB2LAB)

    e1 = _edges(lab1, s)
    e2 = _edges(lab2, s)
    if s.edge_tolerance:
        near1 = cv2.dilate(e1.astype(np.uint8), _disk(s.edge_tolerance)) > 0
        near2 = cv2.dilate(e2.astype(np.uint8), _disk(s.edge_tolerance)) > 0
    else:
        near1, near2 = e1, e2
    unmatched = (e2 & ~near1).astype(np.float32) + s.vanished_edge_weight * (e1 & ~near2).astype(np.float32)
    density = cv2.GaussianBlur(unmatched, (0, 0), s.density_sigma)

    f1 = cv2.GaussianBlur(lab1.astype(np.float32), (0, 0), 1.5)
    f2 = cv2.GaussianBlur(lab2.astype(np.float32), (0, 0), 1.5)
    delta = f2 - f1
    delta[..., 0] *= s.lightness_weight * (100.0 / 255.0)  # OpenCV's 8-bit L* is scaled to 0–255
    colour = np.sqrt((delta**2).sum(axis=2))
    lightness2 = f2[..., 0]
    shadow2 = lightness2 < s.shadow_ratio * float(np.median(lightness2))
    vegetation2 = _excess_green(t2) >= s.vegetation_exg

    zone = (density > s.density_threshold) | (colour >= s.colour_strong_delta)
    candidate = zone & ~vegetation2 & ~shadow2
    candidate = candidate.astype(np.uint8)
    if s.open_radius:
        candidate = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, _disk(s.open_radius))

    g1 = _gradient_magnitude(lab1[..., 0])
    g2 = _gradient_magnitude(lab2[..., 0])
    height, width = candidate.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidate, connectivity=8)
    keep = np.zeros(count, dtype=bool)
    similarities: list[float] = []
    rejected = 0
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < s.min_area:
            continue
        m = s.structure_margin
        box = (max(x - m, 0), max(y - m, 0), min(x + w + m, width), min(y + h + m, height))
        region_mask = None
        if s.structure_region_only:
            region = (labels[box[1] : box[3], box[0] : box[2]] == i).astype(np.uint8)
            region_mask = cv2.dilate(region, _disk(m)) if m else region
        similarity = structure_similarity(g1, g2, box, s.structure_shift, region_mask)
        similarities.append(similarity)
        window = (slice(y, y + h), slice(x, x + w))
        inside = labels[window] == i
        region_colour = float(colour[window][inside].mean())
        retained = float(g2[window][inside].mean()) / max(float(g1[window][inside].mean()), 1e-3)
        if (
            similarity < s.structure_max_similarity
            and region_colour >= s.colour_min_delta
            and retained >= s.min_structure_retained
        ):
            keep[i] = True
        else:
            rejected += 1
    changed = keep[labels]
    found_fraction = float(changed.mean())
    gated = found_fraction > 0 and found_fraction < s.min_changed_fraction
    if gated:
        changed = np.zeros_like(changed)
    return AerialAnalysis(
        t1_normalised=t1,
        density=density,
        candidate=candidate.astype(bool),
        changed=changed,
        similarities=similarities,
        rejected_regions=rejected,
        found_fraction=found_fraction,
        gated=gated,
        radiometric_agreement=_agreement(f1[..., 0], lightness2, ~changed & ~shadow2),
        separability=_otsu_separability(density),
        normalisation=s.normalisation,
    )
