"""Pure functions and parsing: no app, no server (a refused start at most)."""
