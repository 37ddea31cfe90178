"""F6/F9 figure functions on hand-made results: which panels the learning curves draw."""

from lifsg.figures import mnist as f6


def _result(name, encoding="constant"):
    history = [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.5, "val_accuracy": 0.9} for e in (1, 2)]
    return {"name": name, "seed": 0, "encoding": encoding, "history": history}


def test_learning_curves_draw_the_table_panel_only_with_table_runs():
    fig, data = f6.learning_curves([_result("dense_best_s0")])
    assert [ax.get_title() for ax in fig.axes] == ["headline runs"]
    assert data["run"] == ["dense_best_s0", "dense_best_s0"]
    fig, data = f6.learning_curves([_result("dense_best_s0"), _result("table_latency_flat_s0")])
    assert [ax.get_title() for ax in fig.axes] == [
        "(a) headline runs",
        "(b) encodings x surrogates",
    ]
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]  # one seed and their mean each
