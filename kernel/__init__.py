"""The tiny shared kernel every package may import: errors, ids, key naming, keyring, clock.

It imports nothing from the domain packages; see docs/architecture.md for why it exists and
what may (and may not) be added to it.
"""

from kernel.compiled import install

install()  # before any compiled module can be imported (kernel/compiled.py)
