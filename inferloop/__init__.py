"""inferloop: keeps machine-learning models working in production."""

from inferloop.offline import apply_offline_defaults

# Before Prefect, MLflow or GX are imported anywhere: nothing may phone home or hang offline.
apply_offline_defaults()

__version__ = "0.1.0"
