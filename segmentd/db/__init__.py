"""SQL only: tables, engines, scoped queries and migrations."""
