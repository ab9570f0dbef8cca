"""zoo's speech family: wav2vec 2.0, HuBERT and WavLM on torchaudio, and a keyword-spotting CNN.

Registered through the ``zoo.plugins`` entry point ``speech = "zoo_speech.plugin:register"``.
Importing this package imports no torch.
"""
