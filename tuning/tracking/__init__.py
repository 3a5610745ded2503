"""MLflow tracking: tag vocabulary, background writer, Tune callback, parent run, store reader.

``tags`` is cheap to import; the other modules import MLflow (and ``callback`` Ray).
"""
