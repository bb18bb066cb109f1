"""`make demo` / `make run`: the whole stack on one machine (embedded PostgreSQL, sandbox, devhost)."""
