"""bdl_src: the library behind *Pyro Demystified*.

Modules: ``data`` (MNIST/Fashion-MNIST offline), ``train`` (helpers of the training
loops), ``cache`` (checkpoints), ``distributed`` (data parallelism), ``nets`` (shared
networks), the chapter modules, ``plots``, ``traces``, ``cli``.
Nothing here downloads, trains or picks a device at import time.
"""

import logging

# Library convention: the application decides where log records go (the CLI prints
# them).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

