"""Evaluation and playground generation: base model vs adapter on held-out rows.

Pure parts (no torch): ``scorers`` (per-example scores), ``bootstrap`` (paired confidence
intervals), ``rows`` (which rows and how they are shown to the model). Heavy parts: ``generate``
(batched generation and log-probs), ``runner`` (an evaluation or generation end to end).
"""
