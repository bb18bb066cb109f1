"""host.json sets functionTimeout to one second: a slower HTTP function must fail like in the host."""

import asyncio

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="slow")
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(float(req.params.get("seconds", "5")))
    return func.HttpResponse("finished")
