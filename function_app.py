"""The Functions entry point: one DFApp, a blueprint per folder.

Indexed by the Python worker (and by `python -m devhost start`); importing it must not touch the
network or the database, so every client is created at the first function call.
"""

import azure.durable_functions as df
import azure.functions as func

from activities.blueprint import bp as activities
from orchestrations.blueprint import bp as orchestrations
from starters.http_api import bp as http_api
from starters.service_bus import bp as service_bus

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(service_bus)
app.register_functions(http_api)
app.register_functions(orchestrations)
app.register_functions(activities)
