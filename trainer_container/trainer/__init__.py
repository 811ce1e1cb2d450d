"""The program that fine-tunes inside the trainer container: `python -m trainer --spec ...`."""
