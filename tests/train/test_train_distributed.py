"""Data parallelism: N processes (gloo, CPU) take the same steps as one process with the same global batch."""

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import losses, run_cli, tiny_recipe, write_dataset, write_recipe

from magnetkit.recipe import load_recipe
from magnetkit.train.build import build_modules
from magnetkit.train.loop import train

COMMON = dict(steps=4, batch_size=4, lr=1e-3, warmup_steps=1, cfg_dropout=0.5)


def weights(out_dir):
    return load_file(str(out_dir / "model" / "model.safetensors"))


def assert_same_run(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-5, atol=1e-6, msg=lambda m: f"{key}: {m}")
    (la, lb) = losses(a), losses(b)
    assert [s for s, _ in la] == [s for s, _ in lb] == [1, 2, 3, 4]
    torch.testing.assert_close(torch.tensor([x for _, x in la]), torch.tensor([x for _, x in lb]), rtol=1e-5, atol=0)


@pytest.fixture
def dataset(tmp_path, fakes):
    manifest = write_dataset(tmp_path / "data", count=6)
    reference = tmp_path / "one"
    train(write_recipe(tmp_path / "one.yaml", tiny_recipe(reference, manifest, **COMMON,
                                                            ema_decay=0.9, ema_every=1)))
    return manifest, reference


def test_two_ddp_processes_match_one_process(tmp_path, dataset):
    manifest, reference = dataset
    recipe = tiny_recipe(tmp_path / "two", manifest, **COMMON, ema_decay=0.9, ema_every=1)
    recipe["data"]["cache"] = str(reference / "tokens")  # reused: no second encoding
    run_cli("train", str(write_recipe(tmp_path / "two.yaml", recipe)), nproc=2)
    assert_same_run(reference, tmp_path / "two")
    # The 4 steps moved the weights, so matching is not trivially true.
    model, _ = build_modules(load_recipe(tmp_path / "two.yaml"))
    trained = weights(reference)
    assert max((trained[f"model.{k}"] - v).abs().max() for k, v in model.state_dict().items()) > 1e-4
    assert not (tmp_path / "two" / "tokens").exists()  # the cache of the first run was reused


def test_gradient_accumulation_matches_one_big_batch(tmp_path, dataset):
    manifest, reference = dataset
    recipe = tiny_recipe(tmp_path / "accum", manifest, **COMMON, ema_decay=0.9, ema_every=1, grad_accum=4)
    train(write_recipe(tmp_path / "accum.yaml", recipe))
    assert_same_run(reference, tmp_path / "accum")


@pytest.mark.slow  # FSDP is an option for large models; DDP above is the default path
def test_two_fsdp_processes_match_one_process(tmp_path, dataset):
    manifest, reference = dataset
    recipe = tiny_recipe(tmp_path / "fsdp", manifest, **COMMON, ema_decay=0.9, ema_every=1, distributed="fsdp")
    recipe["data"]["cache"] = str(reference / "tokens")
    run_cli("train", str(write_recipe(tmp_path / "fsdp.yaml", recipe)), nproc=2)
    assert_same_run(reference, tmp_path / "fsdp")
