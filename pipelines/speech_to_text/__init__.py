"""Speech to text: audio in, transcript out, CTC over a bidirectional recurrent stack."""
