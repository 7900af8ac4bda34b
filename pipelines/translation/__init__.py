"""Machine translation: many-to-many sequence-to-sequence with attention (issue 6)."""
