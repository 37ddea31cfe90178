"""Per-epoch checkpoints of a training run: atomic save, the newest one, its state.

A run's folder holds one ``epoch-NNNN/`` folder with the model (optimizer state included) in
:data:`CHECKPOINT` and the training state (config, epoch, history, plateau) in :data:`STATE`.
"""

import json
import os
import shutil
from pathlib import Path

from .results import jsonable

CHECKPOINT = "checkpoint.keras"
STATE = "state.json"


def save_checkpoint(run_dir, model, state):
    """Write epoch ``state["epoch"]``'s checkpoint as one atomic commit; return its folder.

    Model (with optimizer state) and ``state`` go into a fresh temporary folder that is then
    renamed to ``epoch-NNNN``: a checkpoint folder is always complete. Older checkpoints of
    the run are removed afterwards.
    """
    run_dir = Path(run_dir)
    final = run_dir / f"epoch-{state['epoch']:04d}"
    tmp = run_dir / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / CHECKPOINT)
    (tmp / STATE).write_text(json.dumps(state, indent=1, default=jsonable))
    for name in (CHECKPOINT, STATE):
        with open(tmp / name, "rb") as f:
            os.fsync(f.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    for old in run_dir.glob("epoch-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir):
    """The newest checkpoint folder of ``run_dir`` (None if it has none).

    Raises ValueError naming the missing file if that folder lacks the model or the state
    (damaged outside lifsg): a run never restarts silently over a checkpoint.
    """
    folders = sorted(Path(run_dir).glob("epoch-[0-9]*"))
    if not folders:
        return None
    for name in (CHECKPOINT, STATE):
        if not (folders[-1] / name).is_file():
            raise ValueError(
                f"checkpoint {folders[-1]} lacks {name}; remove that folder to resume from an"
                " earlier checkpoint or the whole run folder to start again"
            )
    return folders[-1]


def read_state(folder):
    """The ``state.json`` of a checkpoint folder (ValueError naming a damaged file)."""
    path = Path(folder) / STATE
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read the checkpoint state {path} ({err})") from err


def clear_checkpoint(run_dir):
    """Remove a run's checkpoint folder (to retrain from scratch)."""
    shutil.rmtree(run_dir, ignore_errors=True)


# Segments of a seven-segment display (a top, b top right, c bottom right, d bottom,
