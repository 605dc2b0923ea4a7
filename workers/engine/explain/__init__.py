"""Explanations: attributions of a model's outputs to the columns, pixels and tokens a user knows.

Explainers take a forward function (:class:`~.forward.Forward`: a numpy
batch in, numpy outputs out), never a backend, so perturbation methods run on
any engine in large batches; gradient methods need a differentiable torch
module (:mod:`.torch_form`).
"""
