"""The store: trayline's source of truth (SQLite by default, PostgreSQL for shared lines)."""
