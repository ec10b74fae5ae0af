"""MCLMCF's weights on disk and on the Hugging Face Hub: safetensors only (never a pickle), every tensor checked
strictly, a frozen pretrained text encoder stored by name and hash instead of its weights, the tokenizer shipped
beside the weights. network.py mixes this into the network so that it reads as the paper."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from huggingface_hub import PyTorchModelHubMixin, constants, hf_hub_download
from safetensors.torch import load_model, save_file

from mclmcf.model.lora import is_lora_key
from preprocessing.dataformat import usual_mode
from preprocessing.encoders import load_tokenizer


class HubCheckpoint(PyTorchModelHubMixin, library_name="mclmcf", tags=["multimodal-sentiment-analysis", "mcl-mcf"],
                    license="mit"):
    """save_pretrained / from_pretrained / push_to_hub for a network whose ``config`` is an MCLMCFConfig."""

    def for_inference(self):
        """A copy without the training-only contrastive heads (level-2 fusions, InfoNCE projections). Its text
        encoder is built from the recorded architecture and takes this model's weights, so an encoder kept by
        reference is not resolved and hashed a second time (the hash is carried over: the weights are these)."""
        config = self.config.replace(with_contrastive_heads=False, text_encoder_sha256=None)
        model = type(self)(config)
        config.text_encoder_sha256 = self.config.text_encoder_sha256
        kept = model.state_dict()
        model.load_state_dict({k: v for k, v in self.state_dict().items() if k in kept}, strict=True)
        return model.to(next(self.parameters()).device).eval()

    def stored_state_dict(self) -> dict[str, torch.Tensor]:
        """What a checkpoint holds: everything but a frozen text encoder (stored by name and hash instead);
        its low-rank adapters, if any, are kept."""
        return {k: v.contiguous() for k, v in self.state_dict().items() if not self._by_reference(k)}

    def _by_reference(self, key: str) -> bool:
        return self.config.text_encoder_by_reference and key.startswith("text_encoder.") and not is_lora_key(key)

    def _save_pretrained(self, save_directory: Path) -> None:
        weights = save_directory / constants.SAFETENSORS_SINGLE_FILE
        save_file(self.stored_state_dict(), str(weights), metadata={"format": "pt"})
        usual_mode(weights)
        try:  # ship the tokenizer so the checkpoint is self-contained
            load_tokenizer(self.config.text_encoder).save_pretrained(save_directory)
        except OSError as err:
            warnings.warn(f"tokenizer for {self.config.text_encoder!r} not saved with the weights: {err}")

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download, local_files_only,
                         token, map_location: str = "cpu", strict: bool = True, **model_kwargs):
        """Load safetensors only (never a pickle) and check every tensor strictly."""
        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            model_file = os.path.join(model_id, constants.SAFETENSORS_SINGLE_FILE)
            if not os.path.isfile(model_file):
                raise FileNotFoundError(f"{model_id}: no {constants.SAFETENSORS_SINGLE_FILE}; only safetensors "
                                        "weights are loaded")
        else:
            model_file = hf_hub_download(repo_id=model_id, filename=constants.SAFETENSORS_SINGLE_FILE,
                                         revision=revision, cache_dir=cache_dir, force_download=force_download,
                                         token=token, local_files_only=local_files_only)
        missing, unexpected = load_model(model, model_file, strict=False, device=map_location)
        missing = [k for k in missing if not model._by_reference(k)]    # resolved and hash-checked on build
        if strict and (missing or unexpected):
            raise RuntimeError(f"{model_id}: weights do not match the config: missing {sorted(missing)[:8]}, "
                               f"unexpected {sorted(unexpected)[:8]}")
        return model.eval()
