"""The subcommands of the ``zoo`` command: one module per command, named after it (``catalog``
holds the three that read the catalogue: ``list``, ``info`` and ``plugins``)."""
