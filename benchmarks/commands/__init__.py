"""The ``tir`` subcommands: one frozen config dataclass each, one module per command group.

:mod:`benchmarks.commands.configs` holds the configs (their ``Attributes:`` docs are the
``--help`` text); ``demo``, ``bench`` (with ``leaderboard``), ``restore``, ``catalog``
(``tools``, ``agents``, ``suites``), ``weights``, ``data`` (``data photos``, ``speed``) and
``train`` (``train``, ``train-tools``, ``experts``) hold the command functions, each taking
its typed config. :mod:`benchmarks.cli` builds the parser from the table of commands.
"""
