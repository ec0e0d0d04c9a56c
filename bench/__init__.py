"""Herald's benchmark harness: ``python -m bench.run [--quick]`` (see ``bench/run.py``)."""
