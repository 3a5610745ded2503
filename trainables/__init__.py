"""Code that runs on Ray workers: data access, fraud metrics, trainable functions.

This package never imports ``tuning`` and never talks to MLflow: workers on a
remote cluster may not reach the tracking server, so the driver does the logging.
"""
