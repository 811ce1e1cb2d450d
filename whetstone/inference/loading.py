"""Load a trained model back from its artifacts folder, for generation and serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class CausalLM(Protocol):
    """What generation uses of a loaded model: a transformers model, or an adapter on one."""

    @property
    def device(self) -> torch.device: ...

    def generate(self, *args: Any, **kwargs: Any) -> Any: ...


def load_trained_model(
    model_dir: str | Path, *, base_model: str | None = None
) -> tuple[CausalLM, PreTrainedTokenizerBase]:
    """(model, tokenizer) from `<output>/model`: an adapter on its base, or a full model.

    `base_model` overrides the base recorded in adapter_config.json (e.g. a local copy).
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(model_dir)
    model: PreTrainedModel | PeftModel
    tokenizer = AutoTokenizer.from_pretrained(folder)
    adapter_config = folder / "adapter_config.json"
    if adapter_config.exists():
        base_name = base_model or json.loads(adapter_config.read_text())["base_model_name_or_path"]
        base = AutoModelForCausalLM.from_pretrained(base_name, dtype="auto")
        model = PeftModel.from_pretrained(base, str(folder))
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
    model.eval()
    return model, tokenizer
