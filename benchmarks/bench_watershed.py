"""Watershed: segengine vs scikit-image 0.26 (identical output) and OpenCV (own semantics).

Cases (issue 6): the coins image tiled to 1200x1500 as float64 and uint8 with the
scikit-image tutorial's two markers on its Sobel elevation map (many equal-valued markers of
different labels: the tie-exact heap runs almost to the end), with region markers, with
local-minima markers; 128^3 and 256^3 smoothed-noise float volumes with seeds; compact
watershed (superpixels); a batch of images. ``quick`` uses the untiled coins and small volumes.

``tie_order="fast"`` and ``tie_order="parallel"`` rows (issue 13) with 1 and 2 threads
against scikit-image: the coins
Sobel map (float64 and float32, tutorial markers), a distance-transform image of the coins
foreground with peak markers, and a smoothed-noise float volume with seeds; the check column
gives the fraction of pixels that differ from the exact mode (scikit-image's output).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from benchmarks.common import measure

OP = "watershed"


def _check(expected, got) -> str:
    got = np.asarray(got)
    if expected.shape == got.shape and expected.dtype == got.dtype and np.array_equal(expected, got):
        return "identical"
    return f"DIFFERENT ({int(np.count_nonzero(expected != got))} pixels)"


def _coins(tiled: bool):
    from skimage import data, filters
    coins = data.coins()
    if tiled:
        coins = np.tile(coins, (4, 4))[:1200, :1500]
    elevation = filters.sobel(coins.astype(np.float64) / 255)
    markers = np.zeros(coins.shape, np.int32)
    markers[coins < 30] = 1
    markers[coins > 150] = 2
    el8 = np.round(elevation / elevation.max() * 255).astype(np.uint8)
    return coins, elevation, el8, markers


def _fast_check(exact, got) -> str:
    got = np.asarray(got)
    return f"vs exact: {np.count_nonzero(exact != got) / exact.size:.4%} pixels differ"


def _distance_case(coins):
    """Distance transform of the coins foreground (negated: basins at the centres) with one
    marker per local maximum (peak markers), float64."""
    fg = coins > 100
    dist = ndi.distance_transform_edt(fg)
    peaks = (dist == ndi.maximum_filter(dist, size=9)) & (dist > 3)
    markers = ndi.label(peaks)[0].astype(np.int32)
    return -dist, markers, fg


def _volume(n: int, seeds: int, rng):
    vol = ndi.gaussian_filter(rng.random((n, n, n), dtype=np.float32), 2).astype(np.float64)
    markers = np.zeros(vol.shape, np.int32)
    idx = rng.choice(vol.size, seeds, replace=False)
    markers.flat[idx] = np.arange(1, seeds + 1)
    return vol, markers


def run(quick: bool) -> list[dict]:
    import segengine
    from skimage.segmentation import watershed as sk_watershed

    rows = []
    rng = np.random.default_rng(0)
    rep = 3 if quick else 5
    coins, elevation, el8, markers = _coins(not quick)
    size = f"{coins.shape[0]}x{coins.shape[1]}"
    regions = ndi.label(el8 < 6)[0].astype(np.int32)

    cases = [
        (f"coins {size} float64 Sobel, 2 tutorial markers", elevation, markers, {}, rep),
        (f"coins {size} uint8 Sobel, 2 tutorial markers", el8, markers, {}, rep),
        (f"coins {size} uint8 Sobel, {regions.max()} region markers", el8, regions, {}, rep),
        (f"coins {size} float64 Sobel, {regions.max()} region markers", elevation, regions, {}, rep),
        (f"coins {size} uint8, markers=None (local minima)", coins, None, {}, rep),
        (f"coins {size} float64 Sobel, 1000 seeds, compactness=0.01", elevation, 1000,
         {"compactness": 0.01}, rep),
        (f"coins {size} uint8 Sobel, tutorial markers, watershed_line", el8, markers,
         {"watershed_line": True}, rep),
    ]
    for n, seeds, r in ([(48, 100, rep), (64, 200, rep)] if quick else [(128, 300, 3), (256, 2000, 1)]):
        vol, vm = _volume(n, seeds, rng)
        cases.append((f"volume {n}^3 float64 smoothed noise, {seeds} seeds", vol, vm, {}, r))

    for case, image, mk, kw, r in cases:
        warm = 1 if r > 1 else 0
        expected = sk_watershed(image, mk, **kw)
        got = segengine.watershed(image, mk, **kw)
        check = _check(expected, got)
        rows.append(measure(OP, case, "segengine", lambda: segengine.watershed(image, mk, **kw),
                            repeat=r, warmup=warm, check=check))
        rows.append(measure(OP, case, "scikit-image", lambda: sk_watershed(image, mk, **kw),
                            repeat=r, warmup=warm, check="reference"))

    # tie_order="fast" and "parallel": 1 and 2 threads vs scikit-image, differing fraction
    # vs exact
    dist, dmarkers, fg = _distance_case(coins)
    vn, vseeds = (64, 200) if quick else (128, 300)
    vol, vm = _volume(vn, vseeds, np.random.default_rng(1))
    fast_cases = [
        (f"coins {size} float64 Sobel, 2 tutorial markers", elevation, markers, {}),
        (f"coins {size} float32 Sobel, 2 tutorial markers", elevation.astype(np.float32),
         markers, {}),
        (f"coins {size} float64 distance transform, {dmarkers.max()} peak markers, mask", dist,
         dmarkers, {"mask": fg}),
        (f"volume {vn}^3 float64 smoothed noise, {vseeds} seeds", vol, vm, {}),
        (f"volume {vn}^3 float32 smoothed noise, {vseeds} seeds", vol.astype(np.float32), vm, {}),
    ]
    for case, image, mk, kw in fast_cases:
        exact = sk_watershed(image, mk, **kw)
        peer = measure(OP, case, "scikit-image", lambda: sk_watershed(image, mk, **kw),
                       repeat=rep, check="reference (exact)")
        for tie in ("fast", "parallel"):
            for t in (1, 2):
                def run_fast(t=t, tie=tie):
                    return segengine.watershed(image, mk, tie_order=tie, num_threads=t, **kw)
                # one case per tie order and thread count (the speed-up column pairs
                # "segengine" with its peers by case); scikit-image is measured once and
                # listed under each
                fcase = f"{case}, tie_order={tie}, {t} thread" + ("s" if t > 1 else "")
                rows.append(measure(OP, fcase, "segengine", run_fast, repeat=rep,
                                    check=_fast_check(exact, run_fast())))
                rows.append({**peer, "case": fcase})

    # OpenCV: 8-bit 3-channel input, its own flooding rules and -1 boundaries: timing only.
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        case = f"coins {size} uint8 Sobel, 2 tutorial markers"
        rgb = np.ascontiguousarray(np.repeat(el8[..., None], 3, axis=2))

        def run_cv():
            m = markers.copy()
            cv2.watershed(rgb, m)
            return m

        agree = float(np.mean(run_cv() == sk_watershed(el8, markers)))
        rows.append(measure(OP, case, "opencv", run_cv, repeat=rep, check=f"not like-for-like ({agree:.1%} pixels agree)",
                            notes="cv2.watershed: 3-channel 8-bit input, own priority rules, -1 on boundaries"))

    # Batch: items in parallel threads vs a scikit-image loop.
    import torch
    batch = np.stack([np.roll(el8, 37 * b, axis=1) for b in range(8)])
    bmarkers = np.stack([np.roll(regions, 37 * b, axis=1) for b in range(8)])
    case = f"batch 8 x {size} uint8 Sobel, region markers, {torch.get_num_threads()} threads"
    expected = np.stack([sk_watershed(batch[b], bmarkers[b]) for b in range(8)])
    check = _check(expected, segengine.watershed_batch(batch, bmarkers))
    rows.append(measure(OP, case, "segengine", lambda: segengine.watershed_batch(batch, bmarkers),
                        repeat=rep, check=check))
    rows.append(measure(OP, case, "scikit-image",
                        lambda: [sk_watershed(batch[b], bmarkers[b]) for b in range(8)],
                        repeat=max(1, rep - 2), check="reference (loop)"))
    return rows
