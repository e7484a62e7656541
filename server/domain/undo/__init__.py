"""Undo (docs/behaviour.md, Undo): every approval, assignment, merge, removal and release can be
reversed for ``PLM_UNDO_HOURS``.

* :mod:`~server.domain.undo.records`: what each action records for its undo, on its audit entry;
* :mod:`~server.domain.undo.removed`: the shadow tables that keep removed rows, hidden from
  every read, until the window ends;
* :mod:`~server.domain.undo.check`: whether an entry can still be undone, and until when;
* :mod:`~server.domain.undo.apply`: ``undoActions`` itself.
"""
