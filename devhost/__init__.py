"""devhost: a pure-Python local host for Azure Durable Functions Python apps."""
