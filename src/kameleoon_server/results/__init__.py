"""Experiment results: stored events -> sufficient statistics (SQL) -> the statistics engine.

* :mod:`.query`: what the storage is asked (``SumsQuery``) and answers (``SumsAnswer``);
* :mod:`.sql` and :mod:`.dialect`: the one results statement, for SQLite and PostgreSQL;
* :mod:`.experiment`: the experiment, its variations and split, from a site's model;
* :mod:`.assemble`: sums -> engine -> the results document (``.schema``);
* :mod:`.table`: the document as a text table (the CLI).

This package imports nothing heavy on its own; import the submodule you need. See
docs/results.md.
"""
