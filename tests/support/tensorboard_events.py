"""Event files read back by TensorBoard's own reader, for the logging tests."""


def tensorboard_scalars(folder):
    """{tag: [(step, value)]} from the event files in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}
