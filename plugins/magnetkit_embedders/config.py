"""The embedders' parameters: torch-free, so registering the plugin stays fast."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

WEIGHTS_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
PCA_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish_pca_params-970ea276.pth"


class MelEmbedderConfig(BaseModel):
    """Parameters of the ``mel`` embedder."""

    model_config = ConfigDict(extra="forbid")

    sample_rate: int = Field(16000, ge=4000, description="audio is resampled to this rate first")
    n_fft: int = Field(1024, ge=64, description="STFT size (Hann window of the same length)")
    hop_length: int = Field(160, ge=1, description="STFT hop in samples (10 ms at 16 kHz)")
    n_mels: int = Field(64, ge=4, description="mel bands (Slaney scale and norm)")
    fmin: float = Field(0.0, ge=0, description="lowest mel frequency (Hz)")
    fmax: float | None = Field(None, gt=0, description="highest mel frequency (Hz); None = Nyquist")
    window_seconds: float = Field(0.96, gt=0, description="frames pooled into one vector (VGGish's 0.96 s)")
    hop_seconds: float = Field(0.48, gt=0, description="hop between pooled windows")
    per_clip: bool = Field(False, description="one vector per clip (statistics over all its frames)")

    @model_validator(mode="after")
    def _fmax_below_nyquist(self) -> "MelEmbedderConfig":
        if self.fmax is not None and self.fmax > self.sample_rate / 2:
            raise ValueError(f"fmax {self.fmax:g} is above the Nyquist frequency {self.sample_rate / 2:g}")
        if self.fmax is not None and self.fmax <= self.fmin:
            raise ValueError("fmax must be above fmin")
        return self


class ClapEmbedderConfig(BaseModel):
    """Parameters of the ``clap`` embedder."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("laion/larger_clap_music", description="hub id or folder of a transformers ClapModel "
                       "with its tokenizer and feature extractor")
    min_window_seconds: float = Field(1.0, ge=0, description="a trailing window shorter than this is dropped")
    window_batch_size: int = Field(16, gt=0, description="windows per CLAP call")
    max_text_tokens: int = Field(77, gt=2, description="prompts are truncated to this many tokens (CLAP's 77)")


class AstEmbedderConfig(BaseModel):
    """Parameters of the ``ast`` embedder."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("MIT/ast-finetuned-audioset-10-10-0.4593", description="hub id or folder of a "
                       "transformers ASTForAudioClassification with its feature extractor")
    segment_seconds: float = Field(10.0, gt=0, description="clips are classified in segments of this length")
    segment_batch_size: int = Field(8, gt=0, description="segments per model call")


class CodecEmbedderConfig(BaseModel):
    """Parameters of the ``encodec`` embedder."""

    model_config = ConfigDict(extra="forbid")

    codec: str = Field("encodec", description="registry name of a codec that offers latents()")
    model: str = Field("facebook/encodec_32khz", description="the codec's weights (its `model` parameter)")


class VggishEmbedderConfig(BaseModel):
    """Parameters of the ``vggish`` embedder."""

    model_config = ConfigDict(extra="forbid")

    weights: str = Field(WEIGHTS_URL, description="VGGish state dict: the torchvggish release URL (cached by "
                         "torch.hub), a local .pth file, or a folder holding vggish-10086976.pth")
    final_relu: bool = Field(False, description="keep the ReLU after the last layer (torchvggish's default)")
    pca: bool = Field(False, description="apply AudioSet's PCA + 8-bit quantisation post-processing")
    pca_weights: str = Field(PCA_URL, description="PCA parameters (URL, file or folder), used when pca is true")
    example_batch_size: int = Field(64, gt=0, description="0.96 s examples per forward pass")
