"""Domain rules. Pure Python over a database connection: no HTTP, no OVN."""
