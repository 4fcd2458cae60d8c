"""The ``t5`` conditioner's pydantic config: free of torch, so plugin registration and `magnetkit validate` import only this."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

class T5ConditionerConfig(BaseModel):
    """Parameters of the ``t5`` conditioner (audiocraft's ``conditioners.<name>.t5``)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("t5-base", description="T5 hub id or local folder (tokenizer + encoder)")
    word_dropout: float = Field(0.0, ge=0, lt=1, description="training only: drop each word with this probability")
    normalize_text: bool = Field(False, description="audiocraft's spaCy text normaliser; not supported")
    max_length: int | None = Field(None, gt=1, description="truncate texts to this many tokens; None = never (audiocraft)")
    unknown_words: Literal["keep", "drop"] = Field(
        "keep", description="keep: tokenize every word (audiocraft); drop: leave out each word that is not one whole "
        "token of the vocabulary, for closed word-level vocabularies such as the demo model's caption encoder")

    @field_validator("normalize_text")
    @classmethod
    def _no_normalizer(cls, value: bool) -> bool:
        if value:
            raise ValueError("text normalisation (audiocraft's spaCy lemmatiser) is not supported; set it to false")
        return value
