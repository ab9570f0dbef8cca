"""zoo's text family: Transformer encoders (BERT, DistilBERT, RoBERTa, MiniLM) and RNN classifiers.

`plugin.register` lists the models without importing torch; the model code lives in
`transformer` and `rnn`, and `hf_checkpoints` turns Hugging Face `transformers`
checkpoints into these modules' state dicts.
"""
