"""audiocraft's T5 text conditioner: a frozen T5 encoder and a learned projection to the model width.

Semantics follow audiocraft's ``T5Conditioner`` exactly (the MAGNeT checkpoints were trained
with it): the batch is tokenized together and padded to its longest text, ``</s>`` ends every
text, a null text ("" or None) tokenizes to ``</s>`` with an all-zero attention mask, T5 runs
with that mask, and the output is ``output_proj(hidden) * mask`` so null and padded rows are 0.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
from torch import nn

from magnetkit import CheckpointError, Condition, from_pretrained, load_complete
from magnetkit_t5.config import T5ConditionerConfig

# A tokenizer built without its vocabulary files still constructs (PITFALLS): T5's holds only
# its 3 special tokens, 100 sentinels and a word boundary. Real vocabularies are far larger.
MIN_ORDINARY_TOKENS = 16
# Under the "magnetkit" logger, which the command line prints.
log = logging.getLogger("magnetkit.t5")
WORD_START = "\u2581"  # sentencepiece's mark of a token that starts a word


class T5Conditioner(nn.Module):
    """Text -> ``Condition``: frozen T5 encoder, learned ``output_proj`` (the only state)."""

    def __init__(self, config: T5ConditionerConfig, output_dim: int, *, tokenizer: Any, encoder: nn.Module):
        super().__init__()
        self.config = config
        self.output_dim = output_dim
        # Held outside the module tree so the frozen T5 never enters state_dict(), parameters()
        # or an optimizer (audiocraft does the same through ``self.__dict__['t5']``).
        self.__dict__["tokenizer"] = tokenizer
        self.__dict__["encoder"] = encoder.eval().requires_grad_(False)
        # The whole-word tokens `known_words` looks words up in, read from the tokenizer once.
        self.__dict__["vocab"] = frozenset(tokenizer.get_vocab()) if config.unknown_words == "drop" else None
        self.output_proj = nn.Linear(encoder.config.d_model, output_dim)

    def forward(self, texts: Sequence[str | None], *, generator: torch.Generator | None = None) -> Condition:
        """Condition [B, L, output_dim] and mask [B, L] (int64) for ``texts``; None or "" is null."""
        entries = ["" if text is None else str(text) for text in texts]
        if self.training and self.config.word_dropout > 0:
            entries = [self._drop_words(entry, generator) for entry in entries]
        if self.config.unknown_words == "drop":
            known = [self.known_words(entry) for entry in entries]
            for entry, kept in zip(entries, known):
                if entry.strip() and not kept:
                    log.warning("no word of %r is in the caption encoder's vocabulary: it generates as the "
                                "empty (unconditional) prompt", entry)
            entries = known
        tokens = self.tokenize(entries)
        encoder = self._encoder_on(self.output_proj.weight.device)
        with torch.no_grad():
            hidden = encoder(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state
        mask = tokens["attention_mask"]  # [B, L]
        embeddings = self.output_proj(hidden.to(self.output_proj.weight)) * mask.unsqueeze(-1)  # [B, L, D]
        return Condition(embeddings=embeddings, mask=mask)

    def tokenize(self, entries: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask [B, L]; the mask rows of empty (null) entries are all 0."""
        kwargs: dict[str, Any] = {"return_tensors": "pt", "padding": True}
        if self.config.max_length is not None:
            kwargs.update(truncation=True, max_length=self.config.max_length)
        tokens = self.tokenizer(list(entries), **kwargs)
        input_ids = tokens["input_ids"].to(self.output_proj.weight.device)
        mask = tokens["attention_mask"].to(input_ids.device).long()
        null = torch.tensor([entry == "" for entry in entries], device=mask.device)
        mask[null] = 0  # audiocraft: an empty text is the null condition, not a text of "</s>"
        return {"input_ids": input_ids, "attention_mask": mask}

    def known_words(self, entry: str) -> str:
        """``entry`` without the words that are not one whole token of the vocabulary (``unknown_words: drop``).

        A word-level vocabulary knows only its training captions' words; any other word would be
        spelled out in tokens the model never saw. A word known without its trailing punctuation
        is kept without it. An entry of unknown words only becomes "", the null condition.
        """
        vocab = self.__dict__["vocab"] or frozenset(self.tokenizer.get_vocab())  # a "keep" conditioner asked directly
        kept = []
        for word in entry.split():
            for form in (word, word.rstrip(",.;:!?")):
                if WORD_START + form in vocab:
                    kept.append(form)
                    break
        return " ".join(kept)

    def _drop_words(self, entry: str, generator: torch.Generator | None) -> str:
        """audiocraft's word dropout: keep each space-separated word with probability 1 - p."""
        words = entry.split(" ")
        keep = torch.rand(len(words), generator=generator) >= self.config.word_dropout
        return " ".join(word for word, kept in zip(words, keep.tolist()) if kept)

    def _encoder_on(self, device: torch.device) -> nn.Module:
        """The encoder, moved to ``device`` first if needed (it is not reached by ``.to()``)."""
        encoder = self.__dict__["encoder"]
        if encoder.device != device:
            encoder.to(device)
        return encoder

    def train(self, mode: bool = True) -> "T5Conditioner":
        """Train the projection only; T5 stays frozen and in eval (no dropout), as in audiocraft."""
        super().train(mode)
        self.__dict__["encoder"].eval()
        return self


def _check_tokenizer(tokenizer: Any, vocab_rows: int, source: str) -> None:
    """Refuse a tokenizer without a real vocabulary, or one whose ids overflow the encoder."""
    ordinary = len(tokenizer) - len(set(tokenizer.all_special_ids))
    if ordinary < MIN_ORDINARY_TOKENS:
        raise CheckpointError(
            f"T5 tokenizer from {source!r} has only {len(tokenizer)} tokens ({ordinary} ordinary): "
            f"its vocabulary files (spiece.model or tokenizer.json) are missing"
        )
    if len(tokenizer) > vocab_rows:
        raise CheckpointError(
            f"T5 tokenizer from {source!r} has {len(tokenizer)} tokens but the encoder embeds only {vocab_rows}"
        )


def build_t5_conditioner(config: T5ConditionerConfig, *, output_dim: int) -> T5Conditioner:
    """audiocraft's T5 conditioner: frozen T5 encoder + learned projection to ``output_dim``."""
    from transformers import T5EncoderModel, T5Tokenizer

    tokenizer = from_pretrained(T5Tokenizer.from_pretrained, config.model, what="T5 tokenizer")
    # float32 always: T5 is known to overflow in fp16, and audiocraft runs it in float32 on CPU.
    encoder = load_complete(T5EncoderModel, config.model, what="T5 encoder", dtype=torch.float32)
    _check_tokenizer(tokenizer, encoder.config.vocab_size, config.model)
    return T5Conditioner(config, output_dim, tokenizer=tokenizer, encoder=encoder)
