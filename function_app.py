"""Azure Functions entry points (Python v2 programming model): bindings only.

Each function hands its trigger's payload to a use case in `scaler/service_layer/` and returns.
Nothing heavy is imported here: the core builds its clients on the first message, not on a cold
start.

    scale_intents    scale-intents   → record the intent as a source, ask for a reconcile
    scale_reconcile  scale-reconcile → converge one cluster to what its sources ask
    scale_schedule   timer           → reconcile every scheduled cluster
"""

import logging

import azure.functions as func

from scaler import bootstrap
from scaler.settings import INTENTS_QUEUE, RECONCILE_QUEUE, STORAGE_CONNECTION

app = func.FunctionApp()


@app.function_name("scale_intents")
@app.queue_trigger(arg_name="msg", queue_name=INTENTS_QUEUE, connection=STORAGE_CONNECTION)
def scale_intents(msg: func.QueueMessage) -> None:
    """Record one scale intent. Raises only when storage itself is unreachable; then
    host.json's retries apply and the redelivery is recognised by its message id."""
    logging.getLogger("scaler").debug(
        "message %s, delivery %s", msg.id, getattr(msg, "dequeue_count", None)
    )
    bootstrap.intake().handle_message(
        msg.get_body(), message_id=str(msg.id), enqueued_at=msg.insertion_time
    )


@app.function_name("scale_reconcile")
@app.queue_trigger(arg_name="msg", queue_name=RECONCILE_QUEUE, connection=STORAGE_CONNECTION)
def scale_reconcile(msg: func.QueueMessage) -> None:
    """Converge one cluster. Transient failures queue the next reconcile with a delay
    themselves; this raises only when storage is unreachable (host.json's retries apply)."""
    bootstrap.reconciler().handle_message(
        msg.get_body(), dequeue_count=getattr(msg, "dequeue_count", None) or 1
    )


@app.function_name("scale_schedule")
@app.timer_trigger(
    arg_name="timer", schedule="%SCALER_TIMER_SCHEDULE%", use_monitor=True, run_on_startup=False
)
def scale_schedule(timer: func.TimerRequest) -> None:
    """Converge the scheduled clusters to the schedule's state of now. A late (past-due) run
    needs no catching up: the desired state is computed for the moment it runs."""
    bootstrap.schedule_tick().run(past_due=timer.past_due)
