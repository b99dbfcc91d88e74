"""Resuming a training run as if it had never stopped, and refusing to resume someone else's.

:class:`ResumeLoader` is MONAI's ``CheckpointLoader`` pointed at the newest checkpoint of a folder,
with one clear error for a checkpoint that cannot be read or belongs to another run. The stateful
pieces saved beside the network and optimiser (Ignite saves anything with ``state_dict``):

- :class:`RunRecord`: what defines the run (network config, data); a mismatch refuses to resume.
- :class:`RandomStates`: the global and the transforms' random generators, so a resumed epoch draws
  what the uninterrupted run would have drawn.
- :class:`ValidationBest`: the best validation metric so far, so a resumed run's first validation does
  not overwrite a better ``model.pt``.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from monai.handlers import CheckpointLoader
from monai.transforms import Randomizable, Transform

from spcxr_monai.distributed import all_gather_lists, rank_and_world_size
from spcxr_monai.errors import SpcxrError
from spcxr_monai.handlers.checkpoint import latest_checkpoint

__all__ = ["CheckpointMismatchError", "RandomStates", "ResumeLoader", "RunRecord", "ValidationBest", "data_fingerprint"]

logger = logging.getLogger(__name__)


class CheckpointMismatchError(SpcxrError, RuntimeError):
    """The checkpoint to resume from is unreadable or belongs to another run."""


def data_fingerprint(items: Sequence[Mapping], keys: Sequence[str] = ("image",)) -> dict:
    """``{"count", "sha1"}`` of a datalist: the number of items and a hash of their ``keys`` values,
    order-independent (a reshuffled but equal datalist has the same fingerprint)."""
    lines = sorted("\t".join(str(item.get(k, "")) for k in keys) for item in items)
    return {"count": len(lines), "sha1": hashlib.sha1("\n".join(lines).encode()).hexdigest()[:16]}


class RunRecord:
    """What defines a run, saved in each checkpoint and compared on resume.

    Args:
        network: the network (recorded by its class name) or a name.
        training_items: the training datalist, recorded as its :func:`data_fingerprint`.
        fingerprint_keys: the item keys the fingerprint hashes.
        fields: further JSON-like values (network size, image size, classes, ...). Resuming from a
            checkpoint whose record differs raises :class:`CheckpointMismatchError` listing every
            difference.
    """

    def __init__(
        self,
        network: Any = None,
        training_items: Sequence[Mapping] | None = None,
        fingerprint_keys: Sequence[str] = ("image",),
        **fields: Any,
    ) -> None:
        if network is not None:
            fields["network"] = network if isinstance(network, str) else type(network).__name__
        if training_items is not None:
            fields["training_data"] = data_fingerprint(training_items, fingerprint_keys)
        self.fields = fields

    def state_dict(self) -> dict:
        return dict(self.fields)

    def load_state_dict(self, saved: Mapping) -> None:
        keys = sorted(set(saved) | set(self.fields))
        diffs = [
            f"{k}: checkpoint {saved.get(k, '(absent)')!r}, this run {self.fields.get(k, '(absent)')!r}"
            for k in keys
            if _plain(saved.get(k)) != _plain(self.fields.get(k))
        ]
        if diffs:
            raise CheckpointMismatchError("; ".join(diffs))


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal (JSON round trips and configs mix them)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _randomizables(objects: Iterable[Any]) -> list[Randomizable]:
    """Every ``Randomizable`` in ``objects``, depth first, including those a transform holds inside
    (``RandAffined`` draws from its ``RandAffine``'s generator and that one's ``RandAffineGrid``)."""
    found: list[Randomizable] = []
    seen: set[int] = set()

    def visit(obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, (list, tuple)):
            for item in obj:
                visit(item)
            return
        if not isinstance(obj, (Randomizable, Transform)):
            return
        if isinstance(obj, Randomizable):
            found.append(obj)
        for value in vars(obj).values():
            visit(value)

    for obj in objects:
        visit(obj)
    return found


class RandomStates:
    """The random generators of a run as one stateful object for checkpoints.

    Saves torch's, numpy's and Python's global generators, the ``R`` of every MONAI ``Randomizable``
    in ``transforms`` (walking ``Compose``), and any object with ``state_dict`` in ``stateful`` (e.g.
    :class:`~spcxr_monai.engines.GMMLPrepareBatch`'s mask generator). Stored as tensors and lists, so
    ``torch.load(weights_only=True)`` reads it.

    In a distributed run every rank draws its own streams but only rank 0 writes checkpoints: attached to
    the trainer (``multi_gpu_train.json`` lists it last among the train handlers, so it runs before the
    checkpoint saver), it gathers every rank's states at each epoch's end and at the run's end, rank 0
    saves them all (``{"ranks": [...]}``) and each rank restores its own.

    Args:
        transforms: transforms (or ``Compose``) whose random states are saved, in a fixed order.
        stateful: other objects with ``state_dict`` / ``load_state_dict``.
    """

    def __init__(self, transforms: Any = (), stateful: Sequence[Any] = ()) -> None:
        self.transforms = _randomizables(transforms if isinstance(transforms, (list, tuple)) else [transforms])
        self.stateful = list(stateful)
        self._ranks: list[dict] | None = None  # every rank's states at the last gather

    def attach(self, engine: Engine) -> None:
        """Gather the ranks' states where the checkpoint saver writes (nothing to do in one process)."""
        if rank_and_world_size()[1] > 1:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._gather)
            engine.add_event_handler(Events.COMPLETED, self._gather)

    def _gather(self, _engine: Engine | None = None) -> None:
        self._ranks = all_gather_lists([self._own_states()])

    def _own_states(self) -> dict:
        return {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(np.random.get_state()),  # noqa: NPY002 - the global stream MONAI's seeding sets
            "python": _to_lists(random.getstate()),
            "transforms": [_numpy_state(t.R.get_state()) for t in self.transforms],
            "stateful": [obj.state_dict() for obj in self.stateful],
        }

    def state_dict(self) -> dict:
        # a checkpoint written before any gather (e.g. on an exception in the first epoch) holds rank 0's only
        return {"ranks": self._ranks} if self._ranks is not None else self._own_states()

    def load_state_dict(self, state: Mapping) -> None:
        if "ranks" in state:
            rank, world = rank_and_world_size()
            if len(state["ranks"]) != world:
                raise CheckpointMismatchError(
                    f"random states of {len(state['ranks'])} processes in the checkpoint, {world} in this run: "
                    "resume with as many processes as the run had (or start a new run folder)"
                )
            state = state["ranks"][rank]
        if len(state["transforms"]) != len(self.transforms) or len(state["stateful"]) != len(self.stateful):
            raise CheckpointMismatchError(
                f"random states of {len(state['transforms'])} transforms in the checkpoint, "
                f"{len(self.transforms)} in this run's pipeline"
            )
        torch.set_rng_state(state["torch"])
        np.random.set_state(_numpy_tuple(state["numpy"]))  # noqa: NPY002 - the global stream MONAI's seeding sets
        random.setstate(_to_tuples(state["python"]))
        for transform, saved in zip(self.transforms, state["transforms"]):
            transform.R.set_state(_numpy_tuple(saved))
        for obj, saved in zip(self.stateful, state["stateful"]):
            obj.load_state_dict(saved)


def _numpy_state(state: Any) -> dict:
    name, keys, pos, has_gauss, cached = state
    return {
        "name": name,
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _numpy_tuple(state: Mapping) -> tuple:
    return (
        state["name"],
        state["keys"].numpy().astype(np.uint32),
        state["pos"],
        state["has_gauss"],
        state["cached_gaussian"],
    )


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value


class ValidationBest:
    """The best key metric an evaluator has seen and the key-metric ``CheckpointSaver``'s record of it.

    Args:
        evaluator: the validation engine (its ``state.best_metric`` / ``best_metric_epoch``).
        saver: the evaluator's MONAI ``CheckpointSaver`` with ``save_key_metric`` (or None).
    """

    def __init__(self, evaluator: Engine, saver: Any = None) -> None:
        self.evaluator = evaluator
        self.saver = saver

    def _key_checkpoint(self) -> Checkpoint | None:
        return getattr(self.saver, "_key_metric_checkpoint", None)

    def state_dict(self) -> dict:
        ckpt = self._key_checkpoint()
        return {
            "best_metric": float(getattr(self.evaluator.state, "best_metric", -1)),
            "best_metric_epoch": int(getattr(self.evaluator.state, "best_metric_epoch", -1)),
            "saved": [[float(item.priority), item.filename] for item in ckpt._saved] if ckpt else [],
        }

    def load_state_dict(self, state: Mapping) -> None:
        self.evaluator.state.best_metric = state["best_metric"]  # type: ignore[attr-defined]  # MONAI's evaluator field
        self.evaluator.state.best_metric_epoch = state["best_metric_epoch"]  # type: ignore[attr-defined]  # MONAI's evaluator field
        ckpt = self._key_checkpoint()
        if ckpt is not None:
            ckpt._saved = [Checkpoint.Item(priority, name) for priority, name in state["saved"]]


class ResumeLoader(CheckpointLoader):
    """Resume from the newest interval checkpoint in ``ckpt_dir`` (none there: start from scratch).

    Unlike a bare ``CheckpointLoader``: a checkpoint that cannot be read, lacks an object of
    ``load_dict``, or whose :class:`RunRecord` differs from this run's raises one
    :class:`CheckpointMismatchError` naming the file, the problem and the way out. Put the
    ``RunRecord`` first in ``load_dict`` so the record is compared before any weights are loaded.
    With ``summary_writer``, TensorBoard events logged after the checkpoint (by the interrupted run),
    or all earlier events when the run starts from scratch, are purged from view.

    Args:
        ckpt_dir: folder of the run's checkpoints.
        load_dict: objects to restore, as for ``CheckpointLoader``.
        prefix: file prefix of the interval checkpoints.
        map_location: as ``torch.load``.
        summary_writer: the run's ``torch.utils.tensorboard.SummaryWriter``, optional.
        enabled: False (or the strings ``"false"``, ``"0"``, ``"no"`` a command line gives) starts from
            scratch whatever the folder holds.
    """

    def __init__(
        self,
        ckpt_dir: str,
        load_dict: dict,
        prefix: str = "checkpoint",
        map_location: Any = None,
        summary_writer: Any = None,
        enabled: bool | str = True,
        name: str | None = None,
    ) -> None:
        super().__init__(load_path=ckpt_dir, load_dict=load_dict, name=name, map_location=map_location)
        self.enabled = str(enabled).strip().lower() not in ("false", "0", "no", "off", "none", "")
        self.ckpt_dir = ckpt_dir
        self.prefix = prefix
        self.summary_writer = summary_writer

    def __call__(self, engine: Engine) -> None:
        path = latest_checkpoint(self.ckpt_dir, self.prefix) if self.enabled else None
        if path is None:  # a new run: what an earlier run logged in this folder is hidden from step 1
            if self.summary_writer is not None:
                _purge_tensorboard_after(self.summary_writer, engine.state.iteration + 1)
            return
        way_out = (
            "start a new run in another bundle_root, or pass --resume false to train from the start "
            "(the checkpoints in that folder will then be replaced)"
        )
        try:
            checkpoint = torch.load(path, map_location=self.map_location, weights_only=True)
        except Exception as e:
            raise CheckpointMismatchError(
                f"{path}: cannot be read as a checkpoint ({type(e).__name__}: {str(e)[:200]}). It is damaged or "
                f"was not written by this toolkit; delete it to resume from an earlier one, or {way_out}"
            ) from None
        missing = [k for k in self.load_dict if k not in checkpoint]
        if missing:
            raise CheckpointMismatchError(
                f"{path}: lacks {missing} (written by another version or another bundle); {way_out}"
            )
        prior_max_epochs = engine.state.max_epochs
        try:
            Checkpoint.load_objects(to_load=self.load_dict, checkpoint=checkpoint, strict=True)
        except CheckpointMismatchError as e:
            raise CheckpointMismatchError(f"{path}: belongs to another run ({e}); {way_out}") from None
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointMismatchError(
                f"{path}: does not fit this run ({str(e).splitlines()[0][:300]}); {way_out}"
            ) from None
        if prior_max_epochs is not None and engine.state.epoch > prior_max_epochs:
            raise CheckpointMismatchError(
                f"{path}: already at epoch {engine.state.epoch}, beyond this run's {prior_max_epochs} epochs; {way_out}"
            )
        engine.state.max_epochs = prior_max_epochs
        if engine.state.epoch == prior_max_epochs:
            self.logger.warning(f"{path}: this run already finished its {prior_max_epochs} epochs; nothing to train")
        if self.summary_writer is not None:
            _purge_tensorboard_after(self.summary_writer, engine.state.iteration + 1)
        self.logger.info(f"Resumed from {path} at epoch {engine.state.epoch}, iteration {engine.state.iteration}")


def _purge_tensorboard_after(writer: Any, step: int) -> None:
    """Hide the events at ``step`` and later that the interrupted run logged (TensorBoard's own
    ``purge_step`` mechanism, applied by reopening the writer's event file)."""
    writer.flush()
    writer.close()
    writer.purge_step = step
    writer._get_file_writer()
