"""`make bench`: the project's figures against references started in the same run (`python -m bench.run`)."""
