"""The engine's two private ``accelerate`` calls and its data-parallel wrapper, in one version-checked place.

``accelerate`` keeps one process-wide state and offers no public way to
change it: an engine asking for another mixed precision than the last one
must reset it (``AcceleratorState._reset_state``). Each training run's
optimizer is registered with the accelerator (``prepare_optimizer``: it
brings the fp16 gradient scaler, and ``clip_grad_norm_`` unscales the
registered optimizers); the public way to drop it, ``free_memory()``, also
runs a full garbage collection and empties the CUDA cache, a stall per run,
so the engine clears the list itself. Both calls were written against
accelerate 1.x (``TESTED_MAJOR``); on any other version the release falls
back to ``free_memory()`` and a reset warns (or, where the call is gone,
says what to install), never failing silently.

The DDP wrapper is torch's own: ``accelerator.prepare_model`` would also
patch the model's ``forward`` with autocast for good and keep every run's
model in the accelerator, which a long-lived app would accumulate.
"""

from __future__ import annotations

import warnings
from typing import Any

from .errors import UnlearnError

#: the accelerate major version the private calls below were written and tested against
TESTED_MAJOR = 1


def accelerate_version() -> tuple[int, ...]:
    import accelerate

    return tuple(int(p) for p in accelerate.__version__.split(".")[:2] if p.isdigit())


def private_api_supported() -> bool:
    """Whether this accelerate is the major version the private calls were written for, and still has them."""
    from accelerate.state import AcceleratorState

    return accelerate_version()[:1] == (TESTED_MAJOR,) and hasattr(AcceleratorState, "_reset_state")


def reset_state() -> None:
    """Forget accelerate's process-wide state, so that the next ``Accelerator`` may use another mixed precision.

    On another major version than the tested one the call is still tried where it exists, with a warning;
    where it is gone, the error says what to install.
    """
    import accelerate
    from accelerate.state import AcceleratorState

    if not hasattr(AcceleratorState, "_reset_state"):
        raise UnlearnError(f"switching mixed precision within one process needs accelerate {TESTED_MAJOR}.x "
                           f"(found {accelerate.__version__}): install accelerate>={TESTED_MAJOR},<{TESTED_MAJOR + 1} "
                           "or use one precision per process")
    if not private_api_supported():
        warnings.warn(f"hf-unlearn resets accelerate's state with a call written for accelerate {TESTED_MAJOR}.x; "
                      f"found {accelerate.__version__}", RuntimeWarning, stacklevel=2)
    AcceleratorState._reset_state(True)


def release_optimizers(accelerator: Any) -> None:
    """Drop the accelerator's references to the optimizers it prepared (a finished run's)."""
    registered = getattr(accelerator, "_optimizers", None)
    if private_api_supported() and isinstance(registered, list):
        registered.clear()
    else:
        accelerator.free_memory()


def data_parallel(model: Any, device: Any) -> Any:
    """``model`` wrapped for gradient averaging across the launched processes (DDP; buffers not broadcast)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=None if device.type == "cpu" else [device],
                                   broadcast_buffers=False)
