"""``python -m pipelines`` (also installed as ``rnn-suite``): see pipelines.cli."""

from pipelines.cli import main_exit

main_exit()
