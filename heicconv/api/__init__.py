"""The public calls (:mod:`.calls`) and the toolkit the adapters build on.

:mod:`.calls` holds ``convert``, ``probe``, ``select`` and the rest of what ``heicconv`` exports. The
other modules here are what more than one adapter needs around those calls, and nothing below them
imports them: :mod:`.workers` (conversions in worker processes with a memory cap and a timeout),
:mod:`.web` (what a conversion request means over HTTP), :mod:`.metrics` (Prometheus counters of the
long-running routes) and :mod:`.terminal` (what the commands print).
"""
