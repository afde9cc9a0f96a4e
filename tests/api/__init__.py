"""The app through Flask's test client (and Flask-SocketIO's): routes, payloads, pushes, on SQLite and PostgreSQL."""
