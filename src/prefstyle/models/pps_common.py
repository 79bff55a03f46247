"""Kept so that older imports keep working: the PPS models' shared parts are in :mod:`prefstyle.models.pps`
(their training in :mod:`prefstyle.train.tasks`)."""

from prefstyle.models.pps import *  # noqa: F403
from prefstyle.models.pps import __all__  # noqa: F401
