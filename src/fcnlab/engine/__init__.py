"""The engine: training, evaluation, prediction, metrics and run reports.

Nothing is imported here on purpose: each submodule is imported where it is used, so that
``import fcnlab.engine.metrics`` does not pull in matplotlib or the data pipeline.
"""
