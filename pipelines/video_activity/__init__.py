"""Video activity recognition (many-to-one): frames in, activity out."""
