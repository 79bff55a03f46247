"""Built-in training tasks, imported on first use by :func:`prefstyle.train.task.get_task`.

One layout for every trainable model: the network and its inference live in
``prefstyle/models/<name>.py`` (rebuilt from a checkpoint through
:func:`prefstyle.models.loading.register_architecture`), and everything about training it (data,
batches, loss, validation) lives here in ``<name>.py`` as a :class:`~prefstyle.train.task.TrainTask`
registered under the model's name.

* ``pienet`` (:mod:`.pienet`) - PieNet: preference embedding + personalized encoder-decoder.
* ``usd`` (:mod:`.usd`), ``upe`` (:mod:`.upe`), ``exemplar`` (:mod:`.exemplar`) - the three PPS
  baselines; what they share (data configuration, the in-memory pair bank and its batches,
  periodic validation) is in :mod:`.pps_base`, :mod:`.pps_bank` and :mod:`.pps_validate`.
* ``toy-affine`` (:mod:`.toy`) - a minimal example task (one global colour matrix); the
  trainer's tests run on it, and it is the template for a new task.

Models fitted in closed form (no gradient steps) declare their fit beside the model instead
(:func:`prefstyle.models.loading.register_fit_without_gradients`).
"""
