"""Data-parallel training on the engines' own distribution APIs (README, "Scaling out").

Two kinds, named by a spec string (the plan runner's ``--distribution``):

- ``"data-parallel"`` (JAX backend): :class:`keras.distribution.DataParallel` over every
  device of every process. Several processes (one per host) join through
  :func:`keras.distribution.initialize`, configured by the environment variables
  ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (the coordinator, process 0, as ``host:port``),
  ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``; CPU processes
  exchange gradients through gloo (JAX's default CPU collectives). The processes join when the
  first :class:`Distribution` is made, which must come before any JAX computation.
- ``"mirrored"`` (TensorFlow backend): :class:`tf.distribute.MirroredStrategy` over the local
  GPUs, or over TensorFlow's logical CPUs where there is no GPU. One process only: Keras 3
  ``model.fit`` with ``MultiWorkerMirroredStrategy`` is broken upstream
  (keras-team/keras#20585), so multi-host training goes through JAX.

Convention: a run's ``batch_size`` is the global batch, all replicas together (each of R
replicas takes batch_size / R samples of every step and the gradients are averaged), and the
learning rate is unchanged. A run on R devices therefore takes the same steps as on one device,
to float rounding. The global batch must be a multiple of R.

:func:`lifsg.studies.training.train` enters :func:`distribution_scope` around build, compile, fit
and evaluation, feeds each process its rows of every global batch
(:meth:`Distribution.epoch_rows`) and lets only the chief (process 0) write checkpoints and
results.
"""

import contextlib
import os

import numpy as np

KINDS = ("data-parallel", "mirrored")
BACKENDS = {"data-parallel": "jax", "mirrored": "tensorflow"}
_MIRRORED = {}  # device names -> tf.distribute.MirroredStrategy


def parse(spec):
    """The kind named by ``spec`` ("data-parallel", "mirrored"), or None for None, "" and
    "none" (no distribution). Raises ValueError for anything else."""
    if spec is None:
        return None
    name = str(spec).strip().lower().replace("_", "-")
    if name in ("", "none"):
        return None
    if name not in KINDS:
        raise ValueError(f"unknown distribution {spec!r}; valid: none, {', '.join(KINDS)}")
    return name


def _join_processes():
    """Join the processes named by ``KERAS_DISTRIBUTION_*`` (once; no-op for one process)."""
    import jax
    import keras

    processes = int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1"))
    if processes > 1 and not jax.distributed.is_initialized():
        try:
            keras.distribution.initialize()
        except RuntimeError as err:
            raise RuntimeError(
                "joining the JAX processes failed; the distribution must be made before any"
                f" JAX computation in this process ({err})"
            ) from err


class Distribution:
    """One data-parallel set-up of ``kind`` ("data-parallel" or "mirrored").

    devices: the devices to use (JAX devices, or TensorFlow device names for "mirrored");
        None: all (every process's for "data-parallel"; the GPUs, else the logical CPUs, for
        "mirrored").
    """

    def __init__(self, kind, devices=None):
        import keras

        self.kind = parse(kind)
        if self.kind is None:
            raise ValueError("Distribution needs a kind; use None for no distribution")
        backend = keras.backend.backend()
        if backend != BACKENDS[self.kind]:
            raise ValueError(
                f"distribution {self.kind!r} needs the {BACKENDS[self.kind]} backend, not"
                f" {backend} (set KERAS_BACKEND)"
            )
        if self.kind == "data-parallel":
            _join_processes()
            self.engine = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
        else:
            import tensorflow as tf

            if devices is None:
                devices = [d.name for d in tf.config.list_logical_devices("GPU")]
                devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
            # Two strategies over the same devices would reuse each other's collective keys
            # and mix up their all-reduces: one strategy per device set and process.
            local = tf.DeviceSpec(job="localhost", replica=0, task=0)
            devices = tuple(
                local.make_merged_spec(tf.DeviceSpec.from_string(d)).to_string() for d in devices
            )
            if devices not in _MIRRORED:
                _MIRRORED[devices] = tf.distribute.MirroredStrategy(list(devices))
            self.engine = _MIRRORED[devices]

    @property
    def replicas(self):
        """Model replicas (devices) over all processes."""
        if self.kind == "data-parallel":
            return int(self.engine.num_model_replicas)
        return int(self.engine.num_replicas_in_sync)

    @property
    def processes(self):
        if self.kind == "data-parallel":
            import jax

            return jax.process_count()
        return 1

    @property
    def process_id(self):
        if self.kind == "data-parallel":
            import jax

            return jax.process_index()
        return 0

    @property
    def is_chief(self):
        """Whether this process writes checkpoints and results (process 0)."""
        return self.process_id == 0

    def __repr__(self):
        return (
            f"Distribution({self.kind!r}: {self.replicas} replicas in {self.processes}"
            f" process(es), this is process {self.process_id})"
        )

    def scope(self):
        """Context in which models are built, compiled, loaded, trained and evaluated."""
        return self.engine.scope()

    def check_batch(self, batch_size):
        """Raise ValueError unless the global ``batch_size`` splits evenly over the replicas."""
        if batch_size % self.replicas:
            raise ValueError(
                f"batch_size {batch_size} (the global batch) must be a multiple of the"
                f" {self.replicas} replicas"
            )

    def epoch_rows(self, n, batch_size, seed):
        """This process's sample indices for one epoch over ``n`` samples, in order.

        The epoch is a permutation of the ``n`` samples drawn from ``seed`` (the same in every
        process and for any number of processes), cut into ``n // batch_size`` global batches;
        the incomplete last batch is skipped (a different random remainder each epoch). Each
        process gets its consecutive ``batch_size / processes`` rows of every global batch, so
        the processes' local batches make up the global batch in order. Feed them to
        ``fit(..., batch_size=batch_size // processes, shuffle=False)``.
        """
        self.check_batch(batch_size)
        batches = n // batch_size
        if batches == 0:
            raise ValueError(f"{n} samples make no full global batch of {batch_size}")
        order = np.random.default_rng(seed).permutation(n)[: batches * batch_size]
        order = order.reshape(batches, self.processes, batch_size // self.processes)
        return order[:, self.process_id].ravel()

    def agree(self, value, what):
        """Raise ValueError in every process unless all processes hold the same integer."""
        if self.processes == 1:
            return
        from jax.experimental import multihost_utils

        values = np.asarray(multihost_utils.process_allgather(np.int64(value))).ravel()
        if np.any(values != values[0]):
            raise ValueError(
                f"the processes disagree on {what}: {values.tolist()} (each process must see"
                " the same run folder and data)"
            )

    def barrier(self, name):
        """Wait until every process reaches the barrier ``name`` (no-op for one process)."""
        if self.processes > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(name)

    def from_chief(self, value):
        """The chief's integer ``value``, in every process."""
        if self.processes == 1:
            return value
        from jax.experimental import multihost_utils

        return int(multihost_utils.broadcast_one_to_all(np.int64(value)))

    @contextlib.contextmanager
    def local(self):
        """Context on one JAX device of this process, with no cross-device work: for
        evaluating a copy of the model on any number of images (JAX cannot split a batch that
        is not a multiple of the devices; every process evaluates all images itself)."""
        import jax
        import keras

        one = keras.distribution.DataParallel(
            devices=jax.local_devices()[:1], auto_shard_dataset=False
        )
        with one.scope():
            yield


def get(spec):
    """A :class:`Distribution` for ``spec`` (a kind string or a Distribution), or None."""
    if isinstance(spec, Distribution):
        return spec
    kind = parse(spec)
    return None if kind is None else Distribution(kind)


@contextlib.contextmanager
def distribution_scope(spec):
    """Enter the scope of ``get(spec)`` and yield that Distribution (None: no scope, yields
    None). Build, compile, load, fit and evaluate inside it."""
    distribution = get(spec)
    with contextlib.nullcontext() if distribution is None else distribution.scope():
        yield distribution
