"""inferloop: keeps machine-learning models working in production.

Importing inferloop (or any module of its core) changes nothing in the process: the entry points
(the CLI, a flow run, the stack's servers and workers) call `inferloop.core.offline.prepare_process`.
"""

__version__ = "0.1.0"
