"""Which model prefstyle uses when none is named (no imports: the CLI reads it at start-up)."""

#: the model of ``prefstyle demo``, ``personalize`` and the study app's style page; its fitted
#: settings (or weights) ship in ``src/prefstyle/assets/models/<name>/``
DEFAULT_MODEL = "looks"
#: the default for ``personalize --liked`` (photos a person likes, no pairs): PieNet's scheme 2
DEFAULT_LIKED_MODEL = "pienet"
