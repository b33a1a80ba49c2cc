import kernel  # noqa: F401 - first: it serves this package's compiled modules (kernel/compiled.py)
