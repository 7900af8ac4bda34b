"""Sentiment analysis (many-to-one): text in, class probabilities out."""
