"""Time-series forecasting (many-to-one and many-to-many): a window of past steps in, the next
``horizon`` steps of one or more target columns out."""
