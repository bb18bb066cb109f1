"""A Service Bus trigger whose connection setting is not defined anywhere: the host must refuse to start."""

import azure.functions as func

app = func.FunctionApp()


@app.service_bus_queue_trigger(arg_name="msg", queue_name="orders", connection="OrdersBusConnection")
def orders(msg: func.ServiceBusMessage) -> None:
    pass
