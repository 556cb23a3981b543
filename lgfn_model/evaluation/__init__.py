"""Measuring models: metrics, reports and the evaluation runs behind ``lgfn evaluate``."""
