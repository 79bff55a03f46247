"""How the reference points that need the evaluated data are built (see
:func:`prefstyle.models.loading.load_for_data`).

* ``oracle``, ``bayes`` and ``bayes-seen`` (a looks crowd's ``bayes`` without the held-out look
  families) read a simulated dataset's ground truth (``ground_truth.json``);
* ``global-style`` is fitted on the dataset's training users (never the evaluated ones).

Each raises :class:`~prefstyle.models.loading.NotApplicable` when the data cannot support it, so
an evaluation leaves it out with that note, or refuses when it was asked for by name.
"""

from __future__ import annotations

from prefstyle.models.base import PersonalizationModel
from prefstyle.models.loading import DataContext, NotApplicable, register_data_factory
from prefstyle.models.reference import BayesModel, GlobalStyleModel, OracleModel

__all__: list[str] = []


def _ground_truth(ctx: DataContext, name: str) -> str:
    if ctx.ground_truth is None:
        raise NotApplicable(f"model '{name}' needs a simulated dataset (ground_truth.json); this one has none")
    return str(ctx.ground_truth)


def _oracle(ctx: DataContext) -> PersonalizationModel:
    return OracleModel(ground_truth=_ground_truth(ctx, OracleModel.name))


def _bayes(ctx: DataContext) -> PersonalizationModel:
    return BayesModel(
        ground_truth=_ground_truth(ctx, BayesModel.name),
        particles=int(ctx.options.get("particles", 512)),
        seed=ctx.seed,
    )


def _bayes_seen(ctx: DataContext) -> PersonalizationModel:
    from prefstyle.errors import PrefstyleError
    from prefstyle.models.reference import bayes_seen_reference

    root = _ground_truth(ctx, "bayes-seen")
    try:
        return bayes_seen_reference(ground_truth=root, seed=ctx.seed)
    except PrefstyleError as e:
        raise NotApplicable(str(e)) from None


def _global_style(ctx: DataContext) -> PersonalizationModel:
    train = ctx.training_users()
    if not train:
        raise NotApplicable(
            f"{GlobalStyleModel.name} needs training users outside the evaluated ones; the dataset has none",
            path=ctx.dataset.root,
        )
    model = GlobalStyleModel(seed=ctx.seed, steps=int(ctx.options.get("global_steps", 150)))
    return model.fit(ctx.dataset, train, progress=ctx.progress)


register_data_factory(OracleModel.name, _oracle)
register_data_factory(BayesModel.name, _bayes)
register_data_factory("bayes-seen", _bayes_seen)
register_data_factory(GlobalStyleModel.name, _global_style)
