"""Read a run directory's TensorBoard events back with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def load_events(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def scalar_values(events: EventAccumulator, tag: str) -> dict[int, float]:
    return {event.step: event.value for event in events.Scalars(tag)}


def logged_hparams(events: EventAccumulator) -> dict[str, object]:
    """The hyperparameters of the run's HParams session, as plain values."""
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
            for name, value in info.hparams.items()}


def card(events: EventAccumulator) -> str:
    """The run's text card (its final metrics, or why it failed), as Markdown."""
    return events.Tensors("run/summary/text_summary")[0].tensor_proto.string_val[0].decode()


def session_status(events: EventAccumulator) -> str:
    """How the run's HParams session ended (STATUS_SUCCESS, STATUS_FAILURE), or "" where it did not."""
    from tensorboard.plugins.hparams import api_pb2

    content = events.PluginTagToContent("hparams").get("_hparams_/session_end_info")
    if content is None:
        return ""
    return api_pb2.Status.Name(plugin_data_pb2.HParamsPluginData.FromString(content).session_end_info.status)


def hparams_records(run_dir: Path) -> list[str]:
    """The HParams session records in the run's event files, in the order written: "session_start_info",
    "session_end_info" (TensorBoard shows the first session it reads, whatever follows it)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return [value.tag.removeprefix("_hparams_/") for path in sorted(run_dir.glob("events.out.tfevents.*"))
            for event in EventFileLoader(str(path)).Load() for value in event.summary.value
            if value.metadata.plugin_data.plugin_name == "hparams"]
