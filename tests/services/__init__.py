"""Several processes on PostgreSQL, Redis and nginx: the group commit, migrations, scaling out."""
