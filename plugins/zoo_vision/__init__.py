"""zoo's image family: every torchvision classification model, with its weights' metadata.

The cards come from ``catalog.json``, generated from torchvision by
``python -m zoo_vision.generate``; registering them imports no torch.
"""
