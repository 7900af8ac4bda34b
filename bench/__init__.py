"""Recurrent-layer benchmark: our layers against Keras's built-ins (and PyTorch).

`python -m bench` (what `make bench` runs) times a training step (forward,
backward, Adam) and inference for `layers.LSTM`, `GRU` and `SimpleRNN` against
`keras.layers.LSTM`, `GRU` and `SimpleRNN` (and `torch.nn.LSTM`, `GRU`, `RNN`
when PyTorch is importable), unidirectional and bidirectional, on a few
shapes. Variants are interleaved in one process after a warm-up; each number
is the median of several rounds. It prints a table and writes the same numbers
to `bench/results.json`. See `python -m bench --help`.
"""
