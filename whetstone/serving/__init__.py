"""A small OpenAI-compatible server for one trained model, on transformers.

`python -m whetstone.serving --model-dir <dir> --port <port> --name <model>`: the
local runtime's deployments. Only this package (with whetstone.inference, which loads
the model and generates) imports torch and transformers on the platform side.
"""
