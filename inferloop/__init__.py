"""inferloop: keeps machine-learning models working in production."""

from inferloop.offline import apply_offline_defaults, limit_malloc_arenas

# Before Prefect, MLflow or GX are imported anywhere: nothing may phone home or hang offline,
# and before any thread starts: worker threads must not each grow a malloc arena.
apply_offline_defaults()
limit_malloc_arenas()

__version__ = "0.1.0"
