"""Reporting: the study report, notebook views, HTML/PDF rendering."""
