"""Machine translation: many-to-many sequence-to-sequence with attention and beam search."""
