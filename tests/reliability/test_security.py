"""Safe defaults: local binding and a warning for exposed ones, a password in front of every page and API route,
the upload size limit, names that cannot leave the runs folder, no remote code unless ticked for a local folder,
and only safetensors weights loaded from run folders."""

import argparse
import json
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
from conftest import SAMPLE, free_port, launch_chromium

from studio.config import RunConfig, validate_config
from studio.errors import StudioError
from studio.ui.security import PUBLIC_PATHS, PUBLIC_PREFIXES


def test_binds_locally_unless_told_and_warns_when_exposed():
    import launch

    assert launch.parse_args([]).host == "127.0.0.1"
    assert launch.exposure_warning(launch.parse_args([])) is None
    assert launch.exposure_warning(launch.parse_args(["--host", "0.0.0.0", "--auth", "ann:pw"])) is None
    warning = launch.exposure_warning(launch.parse_args(["--host", "0.0.0.0"]))
    assert "0.0.0.0:7860 without a password" in warning and "--auth" in warning
    assert "share link" in launch.exposure_warning(launch.parse_args(["--share"]))


@pytest.fixture(scope="module")
def trained_run(tiny_model_dir, tmp_path_factory):
    """A finished run in a runs folder, and a copy of it outside that folder."""
    from studio.train.worker import start_training

    runs = tmp_path_factory.mktemp("secure") / "runs"
    config = RunConfig().replace({"name": "kept", "model": {"name": str(tiny_model_dir), "max_seq_length": 256},
                                  "data": {"path": str(SAMPLE)},
                                  "lora": {"use_gradient_checkpointing": "false", "r": 8},
                                  "train": {"max_steps": 2, "per_device_train_batch_size": 4,
                                            "gradient_accumulation_steps": 1}})
    job = start_training(config, runs)
    assert job.wait(300) and job.state == "finished", job.error
    outside = runs.parent / "outside"
    shutil.copytree(job.run.path, outside)
    return runs, job.run.path, outside


@pytest.fixture(scope="module")
def secured_app(trained_run, tiny_model_dir):
    from studio.ui.app import launch

    runs, _, _ = trained_run
    config_path = runs.parent / "prefill.json"
    RunConfig().replace({"model": {"name": str(tiny_model_dir), "max_seq_length": 256}}).save(config_path)
    port = free_port()
    args = argparse.Namespace(host="127.0.0.1", port=port, share=False, auth="ann:s3cret", runs_dir=str(runs),
                              max_upload_mb=0.05, config=str(config_path))
    demo = launch(args, block=False)
    yield demo, f"http://127.0.0.1:{port}"
    demo.close()


def _routes(routes):
    for route in routes:
        if hasattr(route, "path"):
            yield route.path, sorted(set(getattr(route, "methods", None) or []) - {"HEAD"})
        else:  # an included router (Gradio's /gradio_api routes)
            yield from _routes(route.original_router.routes)


def test_every_page_and_api_route_needs_the_password(secured_app):
    demo, url = secured_app
    checked = 0
    for path, methods in _routes(demo.app.routes):
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        if concrete in PUBLIC_PATHS or concrete.startswith(PUBLIC_PREFIXES):
            continue
        for method in methods:
            request = urllib.request.Request(url + concrete, method=method, data=b"{}" if method == "POST" else None,
                                             headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=10)
                status = 200
            except urllib.error.HTTPError as err:
                status = err.code
            assert status == 401, (method, path, status)
            checked += 1
    assert checked > 40  # config, info, every call/run/queue/upload/file route, Gradio's reset and cancel...
    home = httpx.get(url + "/", headers={"Accept-Encoding": "gzip"}, timeout=10).text  # as a browser asks
    assert "window.gradio_api_info" in home
    assert "kept" not in home and "moderation assistant" not in home  # the login page holds no run names, rubric


def test_gradio_client_needs_the_password(secured_app):
    from gradio_client import Client

    _, url = secured_app
    with pytest.raises(Exception, match="credentials|login|Login"):
        Client(url + "/", verbose=False)
    with pytest.raises(Exception, match="login|Login"):
        Client(url + "/", auth=("ann", "wrong"), verbose=False)
    client = Client(url + "/", auth=("ann", "s3cret"), verbose=False)
    listing = client.predict(api_name="/list_runs")[0]
    assert "kept" in [row[0] for row in listing["data"]]


def test_upload_size_limit(secured_app):
    _, url = secured_app
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/gradio_api/upload", files={"files": ("a.csv", b"text,label\n")}).status_code == 401
        assert http.post("/login", data={"username": "ann", "password": "s3cret"}).status_code == 200
        small = http.post("/gradio_api/upload", files={"files": ("a.csv", b"text,label\nhi,A\n")})
        assert small.status_code == 200
        big = http.post("/gradio_api/upload", files={"files": ("big.csv", b"x" * 200_000)})  # limit: 0.05 MB
        assert big.status_code == 413


def test_run_names_from_the_web_cannot_leave_the_runs_folder(secured_app, trained_run):
    from gradio_client import Client

    _, url = secured_app
    runs, _, outside = trained_run
    client = Client(url + "/", auth=("ann", "s3cret"), verbose=False)
    for name in ("../outside", str(outside), "..%2Foutside"):
        with pytest.raises(Exception, match="No run"):
            client.predict(name, True, api_name="/delete_run")
        with pytest.raises(Exception, match="No run"):
            client.predict(name, "a question about the rules", api_name="/classify")
        with pytest.raises(Exception, match="No run"):
            client.predict(name, api_name="/export_adapters")
    assert (outside / "run.json").exists() and not (outside / "exports").exists()
    assert (runs / "kept" / "run.json").exists()


def test_a_real_browser_logs_in(secured_app):
    from playwright.sync_api import sync_playwright

    _, url = secured_app
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        try:
            page.goto(url + "/")
            page.get_by_label("username").fill("ann")
            page.get_by_label("password").fill("s3cret")
            page.get_by_role("button", name="Login").click()
            page.locator("#check-data").wait_for(timeout=30000)
        finally:
            browser.close()


def test_remote_code_only_when_ticked_and_only_for_a_local_folder(tiny_model_dir, tmp_path):
    from studio.train.worker import start_training

    with pytest.raises(StudioError, match="only allowed for a local model folder"):
        validate_config(RunConfig().replace({"model": {"name": "someone/custom-model", "trust_remote_code": True}}))
    # A local folder whose config points at its own Python code.
    folder = tmp_path / "custom-model"
    shutil.copytree(tiny_model_dir, folder)
    marker = tmp_path / "CODE_RAN"
    (folder / "custom_config.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('yes')\n"
        "from transformers import Qwen2Config\n\nclass CustomConfig(Qwen2Config):\n    model_type = 'custom_qwen'\n")
    config_json = json.loads((folder / "config.json").read_text())
    config_json.update(model_type="custom_qwen", auto_map={"AutoConfig": "custom_config.CustomConfig"})
    (folder / "config.json").write_text(json.dumps(config_json))
    config = RunConfig().replace({"model": {"name": str(folder), "max_seq_length": 256}, "data": {"path": str(SAMPLE)},
                                  "lora": {"use_gradient_checkpointing": "false"}, "train": {"max_steps": 1}})
    job = start_training(config, tmp_path / "runs")
    assert job.wait(120) and job.state == "failed"
    assert "ships its own Python code" in job.error and "trust_remote_code" in job.error
    assert not marker.exists()  # the folder's code never ran
    ticked = start_training(config.replace({"model": {"trust_remote_code": True}}), tmp_path / "runs")
    ticked.wait(120)
    assert marker.exists()  # ticked: the studio passed the permission through


def test_only_safetensors_weights_load_from_run_folders(trained_run, tmp_path):
    import torch
    from safetensors.torch import load_file

    from studio.models.trained import load_run_model
    from studio.runs.folder import RunDir

    _, run_path, _ = trained_run
    copy = tmp_path / "pickled"
    shutil.copytree(run_path, copy)
    weights = copy / "adapter" / "adapter_model.safetensors"
    torch.save(load_file(weights), copy / "adapter" / "adapter_model.bin")
    weights.unlink()
    with pytest.raises(StudioError, match="pickle files can run code"):
        load_run_model(RunDir(copy), log=lambda m: None)
    assert Path(run_path / "adapter" / "adapter_model.safetensors").exists()
