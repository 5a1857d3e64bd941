"""petaction: a reproducible study of video models for pet behaviour recognition.

The package holds every piece of logic; the notebooks under ``notebooks/`` call it.
"""
__version__ = "0.1.0"
