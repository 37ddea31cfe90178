"""Figures of Gerum & Schilling (2021): one module per paper item.

Each module draws: figure functions returning ``(matplotlib.figure.Figure, data)``, where
``data`` is a dict of equal-length columns of what is plotted. The simulations, training runs
and analyses behind them are in :mod:`lifsg.studies`, one module per paper item (F1
``lif_unit``, F2 ``operating_modes``, F3 ``phase_diagram``, F4 ``encodings``, F5
``surrogate_equivalence``, F6 ``mnist``, F7 ``flowers``); F6 and F7 tables are read from the
stored results. Notebooks call them once with the paper's values, save the result with
:func:`save_figure` into the folders of :func:`output_dirs` and wire sliders
(:mod:`lifsg.widgets`) to the same functions.

- :mod:`lifsg.figures.lif_unit`: F1, the drawn LIF unit with its error flow, and the
  single-neuron playground.
- :mod:`lifsg.figures.operating_modes`: F2, integrator / mixed / coincidence detector and the
  error each input spike receives.
- :mod:`lifsg.figures.phase_diagram`: F3, the largest input spacing that still reaches
  threshold, over (w_input, w_leak).
- :mod:`lifsg.figures.encodings`: F4, an image and its spike rasters under each encoder.
- :mod:`lifsg.figures.surrogate_equivalence`: F5, surrogate shapes, error profiles through
  time and learning curves.
- :mod:`lifsg.figures.mnist`: F6, MNIST learning curves and the results table.
- :mod:`lifsg.figures.flowers`: F7, Oxford Flowers learning curves and results table.
- :mod:`lifsg.figures.activity`: spike rasters of the hidden LIF layers of a trained network,
  and the SynOps of several networks against their dense MACs.

Figures are built with :class:`matplotlib.figure.Figure` (not pyplot), so nothing is shown or
kept open behind the caller's back; in a notebook, ``display(fig)`` or a cell's last value
shows one.
"""

from lifsg.figures.common import output_dirs, save_figure

__all__ = ["output_dirs", "save_figure"]
