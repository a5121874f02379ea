"""The monitoring history as a picture: the monitored metric and the largest feature PSI per day."""

import io
from datetime import date

from inferloop.core import catalog
from inferloop.core.settings import MonitoringSettings, Settings
from inferloop.core.storage import Storage
from inferloop.tasks.monitoring.daily_report import MonitoringReport, load_history


def history_chart(history: list[MonitoringReport], monitoring: MonitoringSettings) -> bytes:
    """PNG: rolling `monitor_metric` with the champion's validation value, and the largest PSI
    of any feature with the drift threshold, one point per monitored day."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and workers
    import matplotlib.pyplot as plt

    metric = monitoring.monitor_metric
    days = [r.day for r in history]
    rolling = [r.rolling_performance.metrics.get(metric) if r.rolling_performance else None for r in history]
    validation = [r.validation_metric for r in history]
    max_psi = [max((d.psi for d in r.drift), default=None) for r in history]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5))
    top.plot(
        days, [v if v is not None else float("nan") for v in rolling], marker="o", label=f"rolling {metric}"
    )
    top.plot(
        days, [v if v is not None else float("nan") for v in validation], "--", label="champion validation"
    )
    top.set_ylabel(metric)
    top.legend(loc="lower left")
    bottom.plot(
        days, [v if v is not None else float("nan") for v in max_psi], marker="o", label="largest PSI"
    )
    bottom.axhline(monitoring.drift_psi_threshold, color="red", linestyle=":", label="threshold")
    bottom.set_ylabel("PSI")
    bottom.legend(loc="upper left")
    bottom.tick_params(axis="x", rotation=45)
    figure.suptitle(f"{history[-1].model_name}: monitoring up to {history[-1].day}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def save_history_chart(storage: Storage, settings: Settings, day: date, days_shown: int = 60) -> str:
    """Draw the last `days_shown` partitions of history up to `day` into its monitoring folder."""
    dataset = settings.dataset.name
    history = load_history(storage, dataset, settings.dataset.partitioning.shift(day, -(days_shown - 1)), day)
    path = catalog.history_chart_file(dataset, day)
    storage.write_bytes(path, history_chart(history, settings.monitoring))
    return storage.uri(path)
