"""The web process after start-up."""

import gc


def loaded_objects_freeze() -> None:
    """Move everything loaded so far (Django, DRF, Channels, Twisted, our modules: it lives as long as the process)
    out of the garbage collector's reach, so a full collection walks only what requests allocate. Without it a full
    collection walked the whole application: a pause of tens of milliseconds in the middle of requests
    (docs/PERFORMANCE.md, the cached API reads). Not applied to the Celery workers: their CPU per sync showed no
    difference beyond the machine's noise (bench_sync, 100 accounts, two runs each way)."""
    gc.collect()
    gc.freeze()
