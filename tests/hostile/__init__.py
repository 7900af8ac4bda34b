"""The corpus of hostile inputs: generated command-line cases (``cases_cli``), serving
requests (``cases_serving``) and hypothesis-generated files and requests (``test_generated``),
each of which must end clean. ``pytest tests/hostile`` prints a table of cases per pipeline
and class (clean, failed) and writes it, with every failing case, to
``build/hostile-corpus.json``."""
