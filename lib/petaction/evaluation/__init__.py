"""Evaluation: scores and tests from saved scores, transfer, cost (timing), diagnosis, figures."""
