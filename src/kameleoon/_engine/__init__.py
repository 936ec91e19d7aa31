"""The pure decision engine: configuration model, hashing, targeting, rule evaluation.

Nothing in this package performs I/O, sleeps, locks or logs. A configuration document is
compiled once into immutable objects (:func:`parse_configuration`); evaluation reads that
model and a visitor record and returns plain values.
"""
