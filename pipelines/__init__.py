"""End-to-end recurrent-network pipelines; ``python -m pipelines --help``."""
