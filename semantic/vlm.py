"""Loading a vision-language model by name (HF id or local path) for PSSS and descriptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class VisionLanguageModel:
    processor: Any
    model: Any
    device: str

    @classmethod
    def load(cls, model_id: str, device: str | None = None, trust_remote_code: bool = False) -> VisionLanguageModel:
        """AutoProcessor + AutoModelForImageTextToText; bf16/fp16 on a GPU, fp32 on the CPU."""
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float32
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        processor = AutoProcessor.from_pretrained(model_id, trust_remote_code=trust_remote_code)
        model = AutoModelForImageTextToText.from_pretrained(model_id, dtype=dtype, trust_remote_code=trust_remote_code)
        return cls(processor, model.to(device).eval(), device)

    def prompt(self, images: int, text: str) -> str:
        content = [{"type": "image"}] * images + [{"type": "text", "text": text}]
        return self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)

    def inputs(self, images: list, texts: list[str]) -> dict:
        """Processor tensors on the model's device, pixel values in the model's dtype."""
        batch = self.processor(images=images, text=texts, return_tensors="pt", padding=True)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(self.model.dtype)
        return batch
