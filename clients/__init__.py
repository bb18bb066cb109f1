"""All I/O of the app: research sources, AI providers, PostgreSQL, Service Bus sender."""
