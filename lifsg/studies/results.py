"""What a finished run leaves: ``<name>.json`` / ``.keras`` / ``.timing.json``, and the one way
to read it back or train it (:func:`run_or_load`).

Every JSON file of the studies is written by :func:`write_json` (atomic, indent 1).
"""

import json
import os
import platform
import re
from pathlib import Path

import keras
import numpy as np

ACTIVITY_FILE = "activity.json"  # the sparsity record beside a study's run results


def versions():
    """The versions that produced a result (lifsg, TensorFlow, Keras, NumPy, Python, backend)."""
    import tensorflow as tf

    import lifsg

    return {
        "lifsg": lifsg.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "backend": keras.backend.backend(),
    }


def jsonable(value):
    """``json.dumps`` default: NumPy scalars as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json(path, obj, newline=False):
    """Write ``obj`` as JSON (indent 1) to ``path`` atomically; ``newline``: end with one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=jsonable) + ("\n" if newline else ""))
    os.replace(tmp, path)


def _atomic_save(model, path):
    tmp = Path(path).with_name(f"tmp_{Path(path).name}")
    model.save(tmp)
    os.replace(tmp, path)


def strip_optimizer(model):
    """An uncompiled copy of ``model`` with the same weights (small files for results)."""
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def load(path):
    """Load a stored model (lifsg's layers are registered on import).

    A file that exists but cannot be read raises ValueError naming it.
    """
    import lifsg  # noqa: F401

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file {path}")
    try:
        return keras.models.load_model(path)
    except Exception as err:  # Keras reports a damaged zip as "File not found"
        raise ValueError(
            f"cannot read the model file {path} ({type(err).__name__}: {err})"
        ) from err


def evaluate(model, images, labels, batch_size=500):
    """Test accuracy (and predictions) of a model or a stored ``.keras`` path.

    Returns ``{"accuracy": float, "predictions": int array}``.
    """
    from .training import prepare_images

    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    x = prepare_images(images)
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    pred = np.argmax(probs, axis=-1)
    acc = float(np.mean(pred == np.asarray(labels)))
    return {"accuracy": acc, "predictions": pred}


def write_results(results_dir, model, results, times):
    """Store a completed run: model without optimizer, results JSON and timings."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    name = results["name"]
    timing = {
        "epoch_time_s": float(np.median(times)) if times else None,
        "epoch_times_s": times,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads": _threads(),
    }
    _atomic_save(strip_optimizer(model), results_dir / f"{name}.keras")
    write_json(results_dir / f"{name}.timing.json", timing)
    write_json(results_dir / f"{name}.json", results)


def _threads():
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()


def load_results(results_dir, names=None):
    """Run results (dicts) in ``results_dir``, sorted by name (only ``names`` if given).

    Each gets ``epoch_time_s`` (median seconds per training epoch on the machine that ran it)
    from its ``<name>.timing.json``, or from the result itself where older runs stored it.
    """
    out = []
    for path in sorted(Path(results_dir).glob("*.json")):
        if path.name.endswith(".timing.json") or (names is not None and path.stem not in names):
            continue
        result = json.loads(path.read_text())
        if isinstance(result, dict) and "history" in result and "config" in result:
            timing = path.with_name(f"{path.stem}.timing.json")
            if timing.is_file():
                result["epoch_time_s"] = json.loads(timing.read_text())["epoch_time_s"]
            result.setdefault("epoch_time_s", float("nan"))
            out.append(result)
    return out


def load_activity(results_dir):
    """The sparsity record stored beside the results (``activity.json``, written from
    :func:`lifsg.studies.sparsity.measure`), or None where there is none."""
    path = Path(results_dir) / ACTIVITY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def group_name(name):
    """``dense_best_s2`` -> ``dense_best``: a run's name without its seed suffix (runs that
    differ only in the seed form one group)."""
    return re.sub(r"_s\d+$", "", name)


def config_key(config, ignore=("note",)):
    """A config (RunConfig or dict) as comparable JSON, defaults of newer fields filled in, the
    fields ``ignore`` left out."""
    from .config import RunConfig

    if not isinstance(config, RunConfig):
        config = RunConfig.from_dict(config)
    return json.dumps({k: v for k, v in config.to_dict().items() if k not in ignore})


def stored_result(results_dir, config):
    """The stored results dict of ``config`` if it is complete with this config, else None.

    A stored result of a different config (e.g. fewer epochs) does not count: the run is then
    trained again and replaces it.
    """
    path = Path(results_dir) / f"{config.name}.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if not result.get("complete") or config_key(result["config"]) != config_key(config):
        return None
    return result


def run_or_load(config, data, run_dir, results_dir, retrain=False, verbose=2):
    """The stored result of ``config`` in ``results_dir`` (its model re-evaluated on the test
    images of ``data``, printed beside the stored accuracy), or, if there is none or
    ``retrain``, the run trained (resumed) by :func:`lifsg.studies.training.train`.

    Prints one line per run; ``verbose`` is :func:`~lifsg.studies.training.train`'s. Returns
    the results dict (JSON fields; no model).
    """
    from .training import train

    stored = None if retrain else stored_result(results_dir, config)
    if stored is not None:
        (_, _), (x_test, y_test) = data
        now = evaluate(Path(results_dir) / f"{config.name}.keras", x_test, y_test)
        print(
            f"{config.name}: stored test accuracy {stored['test_accuracy']:.3f}, "
            f"evaluated now {now['accuracy']:.3f} ({stored['epochs']} epochs)"
        )
        return stored
    result = train(config, data, run_dir, results_dir=results_dir, verbose=verbose)
    result.pop("model")
    accuracy, epochs = result["test_accuracy"], result["epochs"]
    print(f"{config.name}: test accuracy {accuracy:.3f} after {epochs} epochs")
    return result
