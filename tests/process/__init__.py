"""Real server processes (and the demo, the dispenser CLI, the deployment files) on free ports."""
