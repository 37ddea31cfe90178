"""Paper item F3: closed forms against brute-force simulation of the neuron."""

import numpy as np
import pytest

from lifsg import phase

SPOTS = {  # (w_input, w_leak) -> (2 spikes, 3 spikes, many), from docs/model.md, F3
    (0.6, 0.1): (3, 7, 8),
    (0.4, 0.1): (np.nan, 1, 4),
    (0.5, 0.3): (0, 1, 1),
    (0.14, 0.02): (np.nan, np.nan, 7),
}


@pytest.mark.parametrize("point", sorted(SPOTS))
def test_spot_values(point):
    got = [float(phase.max_spacing(*point, spikes)) for spikes in phase.SPIKE_COUNTS]
    np.testing.assert_array_equal(got, SPOTS[point])


def _ambiguous(w, leak, spikes, many):
    """Grid points where either answer is fair: (1 - l)**m lands on the boundary to rounding,
    or (for "many") a train of ``many`` spikes falls short of the infinite train's limit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(phase.required_ratio(w, spikes)) / np.log1p(-leak)
        near = np.abs(ratio - np.round(ratio)) < 1e-6
        if spikes == "many":
            q = (1 - leak) ** phase.max_spacing(w, leak, spikes)
            near |= (q < 1) & (w * (1 - q**many) / (1 - q) < 1)
    return near


@pytest.mark.parametrize("spikes", phase.SPIKE_COUNTS)
def test_formula_matches_simulation(spikes):
    grid = np.round(np.arange(0.02, 1.0001, 0.02), 2)
    w, leak = (a.ravel() for a in np.meshgrid(grid, np.r_[0.0, grid[:-1]]))
    largest = 10
    formula = phase.max_spacing(w, leak, spikes)
    formula = np.where(formula > largest, np.inf, formula)
    simulated = phase.simulate_max_spacing(w, leak, spikes, largest=largest, many=400)
    keep = ~_ambiguous(w, leak, spikes, many=400)
    assert keep.mean() > 0.9
    np.testing.assert_array_equal(formula[keep], simulated[keep])


def test_no_leak_limit():
    assert phase.max_spacing(0.5, 0.0, 2) == np.inf
    assert np.isnan(phase.max_spacing(0.49, 0.0, 2))
    assert phase.max_spacing(0.34, 0.0, 3) == np.inf
    assert phase.max_spacing(0.01, 0.0, "many") == np.inf


def test_bad_arguments():
    with pytest.raises(ValueError, match="spikes"):
        phase.max_spacing(0.5, 0.1, 4)
    with pytest.raises(ValueError, match="w_leak"):
        phase.max_spacing(0.5, 1.5, 2)
