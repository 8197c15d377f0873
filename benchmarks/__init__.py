"""yolokit's benchmarks: ``yolokit bench NAME`` runs ``benchmarks/NAME.py`` from a source checkout.

They sit outside the ``yolokit`` package (not in the wheel): they read the real data in ``../shared/data`` and the
checkout's ``configs/``. Each module exposes ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``."""
