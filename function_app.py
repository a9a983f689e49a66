"""Azure Functions entry points (Python v2 programming model): bindings only.

Each function hands its trigger's payload to the shared core in `scaler/` and returns. Nothing
heavy is imported here: the core builds its clients on the first message, not on a cold start.
"""

import logging

import azure.functions as func

from scaler import bootstrap
from scaler.settings import INTENTS_QUEUE, STORAGE_CONNECTION

app = func.FunctionApp()


@app.function_name("scale_intents")
@app.queue_trigger(arg_name="msg", queue_name=INTENTS_QUEUE, connection=STORAGE_CONNECTION)
def scale_intents(msg: func.QueueMessage) -> None:
    """Apply one scale intent. Transient failures are re-enqueued with a delay by the core;
    this raises only when storage itself is unreachable, and then host.json's retries apply."""
    logging.getLogger("scaler").debug(
        "message %s, delivery %s", msg.id, getattr(msg, "dequeue_count", None)
    )
    bootstrap.scale_service().handle_queue_message(
        msg.get_body(), message_id=msg.id, enqueued_at=msg.insertion_time
    )


@app.function_name("scale_schedule")
@app.timer_trigger(
    arg_name="timer", schedule="%SCALER_TIMER_SCHEDULE%", use_monitor=True, run_on_startup=False
)
def scale_schedule(timer: func.TimerRequest) -> None:
    """Converge the scheduled clusters to the schedule's state of now. A late (past-due) run
    needs no catching up: the desired state is computed for the moment it runs."""
    bootstrap.scale_service().run_schedule(past_due=timer.past_due)
