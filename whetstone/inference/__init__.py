"""The torch side shared by the trainer and the platform's serving and demo: loading a
trained model back, generation, the golden answer and a tiny model built on the spot.

Its modules import torch and transformers only inside functions, and the API never
imports this package (tests/unit/test_api_cold_path.py).
"""
