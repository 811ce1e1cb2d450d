"""The web console in headless Chromium against a real `whet serve`: sign in with a token,
upload a dataset and read its report, plan a job (a field error shown beside its field,
then the estimate), create it, pause it once it saved a checkpoint and resume it, watch it
train a tiny model to completed with curves and logs, download the model and a checkpoint,
deploy it and ask the fine-tuned model and its base the same question side by side; the
jobs list and the stats show it. On every screen each control has a name and takes the
keyboard focus.

Screenshots go to the test's own folder; with WHETSTONE_UPDATE_SCREENSHOTS=1 (`make
screenshots`) to docs/images/, which the README and docs/console.md show."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.browser import inaccessible_controls
from support.e2e_jobs import repeat_dataset

from whetstone.cli.tokens import create_token
from whetstone.core.job import Caller
from whetstone.settings import get_settings

pytest.importorskip("torch")
playwright = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
TRAIN_MS = 420_000
DEPLOY_MS = 180_000
# The short CPU run of the end-to-end tests (support/e2e_jobs.py), typed into the form.
FORM = {
    # 90 steps: the first checkpoint (step 10) leaves the page time to pause the job before
    # it ends, however slowly the machine runs
    "spec-training-epochs": "3",
    "spec-training-batch_size": "4",
    "spec-training-gradient_accumulation_steps": "1",
    "spec-training-warmup_steps": "0",
    "spec-training-max_sequence_length": "128",
    "spec-dataset-cutoff_length": "128",
    "spec-lora-target_modules": "all-linear",
    "spec-advanced-logging_steps": "2",
    "spec-advanced-eval_steps": "10",
    "spec-advanced-save_steps": "10",
    "spec-advanced-dataloader_workers": "0",
    "spec-evaluation-max_new_tokens": "16",
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "model"
    subprocess.run([sys.executable, "-m", "whetstone.inference.tiny", str(folder)], check=True)
    return folder


@pytest.fixture
def served(console_url: str) -> tuple[str, str]:
    """(URL, token) of the console where a token exists, so it asks for one."""
    return console_url, create_token(get_settings().home, Caller(user_id="alice", org_id="acme"))


# Records what the charts write on their canvases (axis labels), by chart.
CANVAS_TEXT = """
window.canvasText = [];
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
  window.canvasText.push([this.canvas.closest("figure")?.id ?? "", String(text)]);
  return fillText.call(this, text, ...rest);
};
"""


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Where the screenshots go: docs/images/ when asked to update them, else the test's own
    folder (so a test run leaves the working tree as it was)."""
    return DOCS_IMAGES if os.environ.get("WHETSTONE_UPDATE_SCREENSHOTS") == "1" else tmp_path


def shot(page: Any, folder: Path, name: str, *, full_page: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"console-{name}.png"), full_page=full_page)


def assert_accessible(page: Any) -> None:
    """Every control on the page has an accessible name and takes the keyboard focus."""
    assert inaccessible_controls(page) == []


def test_the_whole_journey_in_a_browser(
    served: tuple[str, str], page: Any, tiny_model: Path, tmp_path: Path, images: Path
) -> None:
    url, token = served
    expect = playwright.expect
    data = tmp_path / "words.jsonl"
    data.write_bytes(repeat_dataset(150))

    # Sign in with the token: the page asks for it because a token exists
    page.add_init_script(CANVAS_TEXT)
    page.goto(url)
    expect(page.get_by_label("API token")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Use this token").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    assert_accessible(page)

    # Datasets, from the header: the report and the upload
    page.get_by_role("link", name="Datasets").click()
    transfer = page.evaluate_handle(
        "text => { const t = new DataTransfer(); "
        "t.items.add(new File([text], 'words.jsonl')); return t; }",
        data.read_text(),
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    expect(page.locator("#verdict")).to_contain_text("Valid: 150 examples")
    expect(page.locator("#token-histogram li").first).to_be_visible()
    expect(page.locator("#split")).to_contain_text("train ≈ 120")
    expect(page.locator("#upload-status")).to_contain_text("Uploaded words.jsonl")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    assert_accessible(page)
    shot(page, images, "dataset")

    # Plan: a model folder, the short run, and the estimate following the settings
    page.get_by_role("link", name="Plan a job with this dataset").click()
    page.fill("#base-model-path", str(tiny_model))
    for control, value in FORM.items():
        page.fill(f"#{control}", value)
    page.select_option("#spec-hardware-gpu_type", "nvidia-l4")
    expect(page.locator("#estimate-cost")).to_contain_text("nvidia-l4", timeout=60_000)
    expect(page.locator("#estimate-cost")).to_contain_text("150 examples")
    expect(page.locator("#fit")).to_contain_text("Fits")
    assert_accessible(page)

    # A value the API refuses comes back beside its field
    page.fill("#spec-training-learning_rate", "-1")
    page.get_by_role("button", name="Create the job").click()
    expect(page.locator("#spec-training-learning_rate-error")).to_contain_text("greater than")
    expect(page.locator("#form-error")).to_contain_text("fix the fields marked above")
    page.locator("#estimate").scroll_into_view_if_needed()
    shot(page, images, "plan")
    page.fill("#spec-training-learning_rate", "0.001")
    page.get_by_role("button", name="Create the job").click()

    # Paused once a checkpoint is saved (the downloads offer one), it stops there
    expect(page.locator("#artifact")).to_be_attached(timeout=TRAIN_MS)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#job-status")).to_have_text("paused", timeout=TRAIN_MS)
    expect(page.get_by_role("button", name="Stop")).to_have_count(0)
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    assert_accessible(page)

    # Resumed, it trains on from its checkpoint to completed, with curves and logs
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#job-status")).not_to_have_text("paused")
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)
    expect(page.locator("#job-status")).to_have_text("completed", timeout=TRAIN_MS)
    page.wait_for_timeout(2500)  # one more refresh: the last points and logs
    expect(page.locator("#chart-loss canvas")).to_be_visible()
    expect(page.locator("#chart-loss .latest")).to_contain_text("eval_loss")
    expect(page.locator("#chart-lr canvas")).to_be_visible()
    expect(page.locator("#logs li").first).to_be_visible()
    expect(page.locator("#logs")).to_contain_text("[training]")
    expect(page.locator("#logs")).to_contain_text("resuming from checkpoint")
    expect(page.locator("#cost-estimated")).to_contain_text("$")
    # It ran on the CPU, whatever GPU the spec asked for
    expect(page.locator("#job-hardware")).to_have_text("CPU (the spec asks for 1 × nvidia-l4)")
    # The learning rate's axis reads 1e-3 and the like, not 0.000
    lr_labels = [text for chart, text in page.evaluate("window.canvasText") if chart == "chart-lr"]
    assert any(re.fullmatch(r"\d(\.\d+)?e-\d", label) for label in lr_labels), lr_labels
    assert not any(re.fullmatch(r"0\.0+", label) for label in lr_labels), lr_labels
    assert_accessible(page)
    shot(page, images, "job", full_page=True)

    # Downloads: the model and a checkpoint by step
    with page.expect_download() as model:
        page.get_by_role("button", name="Download").click()
    assert model.value.suggested_filename.endswith(".tar.gz")
    expect(page.locator("#download-status")).to_contain_text("Downloaded")
    page.select_option("#artifact", "checkpoint")
    step = page.locator("#checkpoint-step option").first.get_attribute("value")
    with page.expect_download() as checkpoint:
        page.get_by_role("button", name="Download").click()
    assert f"checkpoint-{step}" in checkpoint.value.suggested_filename

    # Deploy, then one message to the fine-tuned model and to its base, answered side by
    # side, above the evaluation's base and fine-tuned answers to held-out prompts
    page.get_by_role("button", name="Deploy").click()
    expect(page.locator("#deploy-status")).to_contain_text("ready", timeout=DEPLOY_MS)
    page.get_by_label("Message").fill("Repeat the word\nw7")
    page.keyboard.press("Tab")  # to Max tokens
    page.keyboard.press("Tab")  # to Send
    expect(page.get_by_role("button", name="Send")).to_be_focused()
    page.keyboard.press("Enter")
    tuned = page.get_by_role("region", name="Fine-tuned model")
    base = page.get_by_role("region", name="Base model", exact=True)
    expect(tuned).to_contain_text("Answer:", timeout=DEPLOY_MS)
    expect(tuned.locator("#chat-model")).to_contain_text("ft:")
    # The LoRA job's server also answers as its base (the adapter off): the base model's
    # live answer, labelled with its name, unlike the fine-tuned one
    expect(base).to_contain_text("Answer:", timeout=DEPLOY_MS)
    expect(base.locator("#base-model")).to_have_text(str(tiny_model))
    base_text = base.locator("#base-text").inner_text()
    assert base_text != tuned.locator("#chat-text").inner_text(), base_text
    expect(page.locator("#comparison tbody tr").first).to_be_visible()
    assert_accessible(page)
    shot(page, images, "chat")
    page.get_by_role("button", name="Stop serving").click()
    expect(page.locator("#deploy-status")).to_contain_text("deleted", timeout=DEPLOY_MS)

    # The jobs list and the stats count it
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.locator("#job-rows tr").first).to_contain_text("completed")
    page.get_by_role("link", name="Stats").click()
    expect(page.locator("#by-status")).to_contain_text("completed")
    expect(page.locator("#spend")).to_contain_text("$")
    assert_accessible(page)
    shot(page, images, "stats")
    assert json.loads(page.evaluate("JSON.stringify(sessionStorage)"))["whetstone.token"]
