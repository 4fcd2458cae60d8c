"""The Gradio page of ``magnetkit web``: its layout, its two events (pick a model, generate), and serving it.

Offline by default: Gradio's analytics and the hub's telemetry are switched off before Gradio is
imported, the default theme's fonts are bundled, and the page loads no other script or font.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from magnetkit import MagnetkitError, UsageError
from magnetkit_web import service
from magnetkit_web.service import DEFAULT_MODEL, MAX_SAMPLES, MODES, ModelCache

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'magnetkit[web]'"
TITLE = "magnetkit: MAGNeT text-to-audio"
# The fields a picked model's recipe fills in, in the order of `service.settings_of`'s keys.
SETTING_KEYS = ("duration", "sampler", "temperature", "top_p", "top_k", "cfg_max", "cfg_min", "decoding_steps")
# The generate handler's inputs, in order: `Settings` field names.
INPUT_ORDER = ("prompt", "model", "negative", "duration", "samples", "seed", "mode", "audio_prompt", "infill_start",
               "infill_end", "sampler", "temperature", "top_p", "top_k", "cfg_max", "cfg_min", "decoding_steps")
KEEP_SECONDS = 3600  # results (ours and Gradio's copies) are deleted after this long


def check_gradio() -> None:
    """Fail in one line, before any model loads, when Gradio is missing (a fast check: no import)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("gradio") is not None
    except (ImportError, ValueError):  # a broken or stubbed-out module
        found = False
    if not found:
        raise UsageError(f"the web demo needs Gradio, which is not installed; install it with: {INSTALL_HINT}")


def import_gradio() -> Any:
    """Import Gradio with analytics and telemetry off; one clear error if it is missing or not version 6."""
    # Set before the import: Gradio reads them then. Someone who wants analytics sets them first.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    check_gradio()
    try:
        import gradio
    except ImportError as exc:
        raise UsageError(f"the web demo needs Gradio, which failed to import ({exc}); "
                         f"install it with: {INSTALL_HINT}") from exc
    if int(gradio.__version__.split(".")[0]) != 6:
        raise UsageError(f"the web demo needs Gradio 6, found {gradio.__version__}; install it with: {INSTALL_HINT}")
    return gradio


def serve(args: argparse.Namespace) -> int:
    """``magnetkit web``: check the arguments, load the starting model, serve until interrupted."""
    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    check_gradio()
    cache = ModelCache(device=args.device)
    source = args.source or DEFAULT_MODEL
    first = cache.get(source)  # a model that cannot load fails here, in one line, before serving
    gr = import_gradio()
    demo = build_page(gr, cache, source, service.settings_of(first))
    print(f"magnetkit web: serving {source} (Ctrl+C to stop)", flush=True)
    demo.queue(default_concurrency_limit=1, max_size=64).launch(
        server_name=args.host, server_port=args.port, share=args.share, ssr_mode=False, pwa=False,
        mcp_server=False, inbrowser=False, show_error=False, footer_links=["gradio"])
    return 0


def build_page(gr: Any, cache: ModelCache, source: str, defaults: dict[str, Any]) -> Any:
    """The page: inputs on the left, outputs on the right, and their events; returns the ``gr.Blocks``."""
    # delete_cache: Gradio's copies of results older than an hour go, so a long-running server stays small.
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(KEEP_SECONDS, KEEP_SECONDS)) as demo:
        gr.Markdown(f"## {TITLE}\nType a description, press **Generate**. Settings start at the model's recipe.")
        with gr.Row():
            with gr.Column(scale=5):
                fields = _inputs(gr, source, defaults)
                generate = gr.Button("Generate", variant="primary")
            with gr.Column(scale=6):
                outputs = _outputs(gr, source)
        # Uploading an audio prompt in text mode most likely means "continue this".
        fields["audio_prompt"].upload(lambda mode: MODES[1] if mode == MODES[0] else mode,
                                      inputs=fields["mode"], outputs=fields["mode"])
        fields["model"].change(_on_model(gr, cache), inputs=fields["model"],
                               outputs=[*(fields[k] for k in SETTING_KEYS), outputs[0]])
        handler = _on_generate(gr, cache, Path(tempfile.gettempdir()) / f"magnetkit-web-{os.getpid()}")
        inputs = [fields[name] for name in INPUT_ORDER]
        for event in (generate.click, fields["prompt"].submit):  # one queue for both: one generation at a time
            event(handler, inputs=inputs, outputs=outputs, concurrency_id="generate")
    return demo


def _inputs(gr: Any, source: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """The input fields by name (the names of `INPUT_ORDER`), laid out in the current column."""
    f: dict[str, Any] = {}
    f["prompt"] = gr.Textbox(label="Prompt", lines=2, placeholder="a fast high square-wave arpeggio")
    f["negative"] = gr.Textbox(label="Negative prompt", placeholder="optional: what to steer away from")
    f["model"] = gr.Dropdown(service.model_choices(source), value=source, label="Model", allow_custom_value=True,
                             info="the embedded default model, a shipped recipe, or type a local checkpoint "
                                  "folder (or hub id)")
    with gr.Row():
        f["duration"] = gr.Number(defaults["duration"], label="Duration (s)",
                                  info="with an audio prompt: the total; infill keeps its length")
        f["samples"] = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="Samples", elem_id="samples")
        f["seed"] = gr.Number(-1, label="Seed", precision=0, info="-1: random")
    with gr.Accordion("Audio prompt (continuation and infill)", open=False):
        f["mode"] = gr.Radio(list(MODES), value=MODES[0], label="Mode", elem_id="mode")
        f["audio_prompt"] = gr.Audio(label="Audio prompt", type="filepath", sources=["upload", "microphone"],
                                     elem_id="audio-prompt")
        with gr.Row():
            f["infill_start"] = gr.Number(0.0, label="Infill start (s)")
            f["infill_end"] = gr.Number(1.0, label="Infill end (s)")
    with gr.Accordion("Sampler and guidance", open=False):
        with gr.Row():
            f["sampler"] = gr.Dropdown(service.sampler_names(), value=defaults["sampler"], label="Sampler")
            f["temperature"] = gr.Number(defaults["temperature"], label="Temperature")
        with gr.Row():
            f["top_p"] = gr.Number(defaults["top_p"], label="Top-p", info="used by top_p")
            f["top_k"] = gr.Number(defaults["top_k"], label="Top-k", precision=0, info="used by top_k")
        with gr.Row():
            f["cfg_max"] = gr.Number(defaults["cfg_max"], label="CFG start", info="guidance at the start of a stage")
            f["cfg_min"] = gr.Number(defaults["cfg_min"], label="CFG end", info="guidance at its end")
            f["decoding_steps"] = gr.Textbox(defaults["decoding_steps"], label="Decoding steps",
                                             info="steps for each codebook stage")
    return f


def _outputs(gr: Any, source: str) -> list[Any]:
    """The status line, then every slot's audio, then every slot's spectrogram, then the downloads."""
    status = gr.Markdown(f"Loaded **{source}**.", elem_id="status")
    audios, images = [], []
    for i in range(MAX_SAMPLES):
        audios.append(gr.Audio(label="Output" if i == 0 else f"Output {i + 1}", type="filepath", format="wav",
                               interactive=False, visible=i == 0, buttons=["download"], elem_id=f"output-{i + 1}"))
        # No share button: it would upload the result to the internet.
        images.append(gr.Image(label=f"Spectrogram {i + 1}", type="numpy", format="png", interactive=False,
                               visible=i == 0, height=170, buttons=["download", "fullscreen"],
                               elem_id=f"spectrogram-{i + 1}"))
    files = gr.File(label="Downloads (audio and codes .npy)", file_count="multiple", interactive=False,
                    elem_id="downloads")
    return [status, *audios, *images, files]


def _on_model(gr: Any, cache: ModelCache):
    def pick(source: str, progress=gr.Progress()):
        """Load the picked model (once) and show its recipe's settings; on failure keep the fields as they are."""
        progress(0, desc=f"loading {source}")
        try:
            values = service.settings_of(cache.get(source))
        except MagnetkitError as exc:  # the page says why in one line; the fields keep their values
            gr.Warning(str(exc), title="magnetkit", duration=None)
            return [*(gr.update() for _ in SETTING_KEYS), f"**Could not load {source}:** {exc}"]
        return [*(values[k] for k in SETTING_KEYS), f"Loaded **{source}**."]

    return pick


def _on_generate(gr: Any, cache: ModelCache, root: Path):
    def run(*values: Any, progress=gr.Progress()):
        """Generate with the page's settings (`INPUT_ORDER`); fill the output slots in use, hide the others."""
        page = dict(zip(INPUT_ORDER, values))
        progress(0, desc="starting" if (page["model"] or DEFAULT_MODEL) in cache else "loading model")

        def step(done: int, total: int) -> None:
            progress((done, total), desc="decoding", unit="steps")

        def work() -> service.Result:
            settings = service.settings_from_page(page)
            return service.generate(cache, settings, service.new_output_dir(root, keep_seconds=KEEP_SECONDS), step)

        result = _readable(gr, work)
        n = len(result.audio)
        audio = [gr.update(value=str(result.audio[i]) if i < n else None, visible=i < n) for i in range(MAX_SAMPLES)]
        image = [gr.update(value=result.spectrograms[i] if i < n else None, visible=i < n) for i in range(MAX_SAMPLES)]
        return [result.summary, *audio, *image, [str(f) for f in result.files]]

    return run


def _readable(gr: Any, work):
    """Run ``work``; a magnetkit error becomes the page's error message, anything else a short one (logged in full)."""
    try:
        return work()
    except MagnetkitError as exc:
        raise gr.Error(str(exc), title="magnetkit", duration=None, print_exception=False) from exc
    except Exception as exc:  # an unexpected bug: the page says so in one line, the server log has the traceback
        log.exception("request failed")
        first = (str(exc).strip().splitlines() or [""])[0]
        raise gr.Error(f"internal error ({type(exc).__name__}: {first}); the server log has the details",
                       title="magnetkit", duration=None, print_exception=False) from exc
