"""The training engine every method plugs into; it knows no method.

``step`` (the one masked step, mask in the carry), ``loop`` (the scan over
replicas x steps, ``Trainer``), ``optim`` (the optax chain), ``task``,
``parametrization`` and ``updater`` (the interfaces methods implement),
``mesh`` (devices), ``replicas`` (the named replica axis), and the run
directory: ``workdir``, ``checkpoint``, ``summary``.
"""
