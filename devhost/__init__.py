"""devhost: a pure-Python local host for Azure Durable Functions Python apps.

Core modules (each importable on its own):

- ``devhost.protocol``  the host side of the SDK's out-of-proc protocol: request JSON, reply parsing,
  history event shapes, DTFx replay of actions (pure, no I/O)
- ``devhost.registry``  ``FunctionRegistry.from_app(app)``: orchestrators, activities, entities, triggers
- ``devhost.store``     SQLite persistence (instances, histories, messages, activity work items)
- ``devhost.engine``    ``Engine``: episodes, activities, timers, sub-orchestrations, events, lifecycle
- ``devhost.workers``   bounded execution of orchestrator episodes and activities
- ``devhost.clock``     ``SystemClock`` and ``VirtualClock``
- ``devhost.status``    ``RuntimeStatus``, ``InstanceStatus`` and the errors of instance operations
- ``devhost.testing``   ``DurableTestHost`` and the ``durable_host_factory`` pytest fixture
"""
