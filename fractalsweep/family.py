"""The baseline family: the configs the fused and the double-double kernels implement.

Both kernels are written for the paper's networks and nothing around them: a mean-field MLP
without biases or residual connections, trained by plain gradient descent without weight
decay on the random-regression task, reduced to the score alone (no snapshots, no Lyapunov
twin), with the activations and axis kinds each kernel names. The XLA kernel trains every
config; :func:`outside` is how the other two say, in the job file's words, what of a config
they would not train, so that it is refused rather than computed wrongly.
"""

from __future__ import annotations

__all__ = ["outside"]


def outside(cfg, activations: tuple[str, ...], kinds: tuple[str, ...]) -> list[str]:
    """The settings of ``cfg`` outside the family, each as ``key = value``; empty if none.

    ``activations`` and ``kinds`` are those the kernel implements (its axis kinds come from
    :func:`fractalsweep.axes.kinds_writing`).

    >>> from fractalsweep import config
    >>> outside(config.resolve({"model": {"biases": True}, "training": {"optimizer": "adam"}}),
    ...         ("tanh",), ("lr",))
    ['model.biases = true', "training.optimizer = 'adam'"]
    """
    model, training, measures = cfg.model, cfg.training, cfg.measures
    checks = (
        (model.activation in activations, f"model.activation = {model.activation!r}"),
        (model.parameterization == "mean_field",
         f"model.parameterization = {model.parameterization!r}"),
        (not model.biases, "model.biases = true"),
        (not model.residual, "model.residual = true"),
        (training.optimizer == "gd", f"training.optimizer = {training.optimizer!r}"),
        (not training.weight_decay, f"training.weight_decay = {training.weight_decay}"),
        (cfg.data.task == "random_regression", f"data.task = {cfg.data.task!r}"),
        (cfg.x.kind in kinds, f"x.kind = {cfg.x.kind!r}"),
        (cfg.y.kind in kinds, f"y.kind = {cfg.y.kind!r}"),
        (not measures.lyapunov, "measures.lyapunov = true"),
        (not measures.snapshots, f"measures.snapshots = {list(measures.snapshots)}"),
    )
    return [why for ok, why in checks if not ok]
