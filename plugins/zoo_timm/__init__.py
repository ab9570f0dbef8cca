"""zoo's timm family: every timm architecture (``timm/<arch>``) and pretrained weight (``timm/<arch>.<tag>``).

The cards come from ``catalog.json``, generated from the installed timm by ``python -m zoo_timm.generate``;
registering them imports neither torch nor timm. Creating a model needs the extra:
``pip install "zoo-models[timm]"``. Checkpoint folders timm wrote (``config.json`` with ``architecture``) load
with ``zoo.create("local-dir:DIR")`` through `zoo_timm.folder`, the folder format every card declares.
"""
