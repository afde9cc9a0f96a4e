"""The HTTP side: blueprints, auth, JSON and HTML responses."""
