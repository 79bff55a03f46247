"""Built-in training tasks, imported on first use by :func:`prefstyle.train.task.get_task`.

* ``pienet`` (:mod:`.pienet`) - PieNet: preference embedding + personalized encoder-decoder.
* ``toy-affine`` (:mod:`.toy`) - a minimal example task (one global colour matrix); the
  trainer's tests run on it, and it is the template for a new task.
"""
