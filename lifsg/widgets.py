"""Control factories shared by the notebooks: sliders and drop-downs wired to figure functions.

:func:`interactive_figure` calls a figure function of :mod:`lifsg.figures` with the controls'
values, shows the figure in an :class:`ipywidgets.Output` and redraws it whenever a control
changes (``observe``; no buttons, no ``interact_manual``). Errors are never swallowed: the
first drawing runs in the calling cell, so an error fails that cell (and a papermill run); an
error in a later redraw is shown as an error output inside the Output widget, replacing the
figure, where a reader (or a browser test) sees it.
"""

import ipywidgets as widgets
from IPython.display import display
from matplotlib.figure import Figure

#: width of a control's description, so the sliders line up
DESCRIPTION_WIDTH = "110px"


def _style():
    return {"description_width": DESCRIPTION_WIDTH}


def float_slider(description, value, min, max, step, readout_format=".3f"):
    """A FloatSlider that only updates when released (the figures run the neuron)."""
    return widgets.FloatSlider(
        value=value,
        min=min,
        max=max,
        step=step,
        description=description,
        readout_format=readout_format,
        continuous_update=False,
        style=_style(),
        layout=widgets.Layout(width="380px"),
    )


def int_slider(description, value, min, max, step=1):
    """An IntSlider that only updates when released."""
    return widgets.IntSlider(
        value=value,
        min=min,
        max=max,
        step=step,
        description=description,
        continuous_update=False,
        style=_style(),
        layout=widgets.Layout(width="380px"),
    )


def dropdown(description, options, value=None):
    """A Dropdown over ``options`` (a list of values or of (label, value) pairs)."""
    return widgets.Dropdown(
        options=list(options),
        value=value if value is not None else _first(options),
        description=description,
        style=_style(),
        layout=widgets.Layout(width="380px"),
    )


def _first(options):
    first = list(options)[0]
    return first[1] if isinstance(first, tuple) else first


def figure_of(result):
    """The Figure in a figure function's result: the result itself or the first item of a
    ``(fig, data)`` pair."""
    fig = result[0] if isinstance(result, tuple) else result
    if not isinstance(fig, Figure):
        raise TypeError(f"a figure function must return a Figure or (Figure, data), got {fig!r}")
    return fig


def interactive_figure(fn, controls, fixed=None, columns=2):
    """Controls wired to ``fn``; returns a VBox (controls above the figure) to display.

    fn: a figure function called as ``fn(**fixed, **{name: control.value})``, returning a
    Figure or ``(Figure, data)``. controls: dict keyword -> ipywidgets control. fixed: further
    keyword arguments that do not change. columns: controls per row.

    The first drawing happens here, so an error raises in the calling cell. Later changes
    redraw inside the Output widget; an error there is displayed in it as an error output.
    The VBox keeps ``.output`` (the Output widget), ``.controls`` and ``.redraw()``.
    """
    fixed = dict(fixed or {})
    controls = dict(controls)
    clash = sorted(set(fixed) & set(controls))
    if clash:
        raise ValueError(f"arguments both fixed and controlled: {clash}")
    output = widgets.Output()

    def draw():
        values = {name: control.value for name, control in controls.items()}
        fig = figure_of(fn(**fixed, **values))
        with output:
            display(fig)

    def redraw(change=None):
        output.clear_output(wait=True)  # the old figure stays until the new output arrives
        with output:  # in IPython an exception here becomes an error output in `output`
            draw()

    draw()
    for control in controls.values():
        control.observe(redraw, names="value")
    items = list(controls.values())
    rows = [widgets.HBox(items[i : i + columns]) for i in range(0, len(items), columns)]
    box = widgets.VBox([*rows, output])
    box.output = output
    box.controls = controls
    box.redraw = redraw
    return box
