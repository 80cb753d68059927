"""Long-running processes (the web server, each Celery worker process) after start-up."""

import gc


def loaded_objects_freeze() -> None:
    """Move everything loaded so far (Django, DRF, Channels, Twisted or Celery, our modules: it lives as long as the
    process) out of the garbage collector's reach, so a full collection walks only what the work allocates. Without
    it a full collection walked the whole application: a pause of tens of milliseconds in the middle of requests
    (docs/PERFORMANCE.md, the cached API reads) and CPU spent on every sync."""
    gc.collect()
    gc.freeze()
