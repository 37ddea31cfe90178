"""The browser checks catch what they must (see synthetic.py): of four sliders in a small
synthetic notebook only the working one may pass; a callback that raises, a figure that does
not change and a slider that lost its observer must each be reported, and so must a cell that
fails during Run All."""

import pytest


@pytest.fixture
def synthetic(notebook_of):
    return notebook_of("detector")


def test_cell_error_is_caught(synthetic):
    with pytest.raises(AssertionError, match="a cell that fails on purpose") as info:
        synthetic.assert_no_errors()
    assert "ZeroDivisionError" in str(info.value)
    assert "(from execute_request)" in str(info.value)  # a cell, not a widget callback
    assert "shown in the page" in str(info.value)
    print(f"reported as expected:\n{info.value}")


def test_working_slider_passes(synthetic):
    synthetic.assert_no_errors(since=1, scope=synthetic.widget_cell("ok"))  # the failing cell
    old, new = synthetic.move_slider_and_check("ok", "ArrowRight", expect="0.550")
    assert (old, new) == ("0.500", "0.550")
    assert synthetic.kernel_value("ok") == pytest.approx(0.55)


def test_callback_error_is_caught(synthetic, artifact_dir):
    with pytest.raises(AssertionError, match="ValueError: toy callback broke at a=0.55") as info:
        synthetic.move_slider_and_check("raises", "ArrowRight")
    shot = synthetic.screenshot(artifact_dir / "detector-callback-error.png", "raises")
    print(f"screenshot: {shot}")
    # the error came from the widget callback and is shown in the widget's Output area
    assert "(from comm_msg)" in str(info.value)
    assert "shown in the page" in str(info.value)
    print(f"reported as expected:\n{info.value}")


def test_figure_that_does_not_change_is_caught(synthetic):
    with pytest.raises(AssertionError, match="did not change the figure") as info:
        synthetic.move_slider_and_check("frozen", "ArrowRight")
    print(f"reported as expected:\n{info.value}")


def test_slider_without_redraw_is_caught(synthetic):
    with pytest.raises(AssertionError, match="did not change the figure") as info:
        synthetic.move_slider_and_check("unwired", "ArrowRight")
    print(f"reported as expected:\n{info.value}")
