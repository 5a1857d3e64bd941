"""Shared by every stage: where things live (paths), what produced them (provenance), and the classification metrics (training validates with them, evaluation recomputes them from saved scores)."""
