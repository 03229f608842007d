"""The Design page in a real browser: build a residual block by clicking, add its shortcut, and find the skip edge
and the merge node in the preview's SVG."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import WAIT_MS, no_errors, wait_idle
from .test_design_browser import pick, press, rows


def test_build_a_residual_block_by_clicking_and_see_skip_and_merge(page: Page, app_url: str) -> None:
    page.goto(app_url)  # the Design page: Linear(20 → 256), ReLU, Linear(256 → 10)
    wait_idle(page)
    expect(page.locator(".st-key-row_2")).to_be_visible(timeout=WAIT_MS)
    page.locator(".st-key-sel_1 input").check(force=True)  # the ReLU: out = relu(x) + x, (2, 256)
    wait_idle(page)
    press(page, "residual")
    expect(page.locator(".st-key-row_1")).to_contain_text("Residual", timeout=WAIT_MS)
    expect(page.locator(".st-key-row_1")).to_contain_text("| skip] +")
    wait_idle(page)
    expect(page.locator(".st-key-row_1")).to_contain_text("(2, 256)")  # it builds

    graph = page.locator(".st-key-graph svg")
    expect(graph.locator("g.node title", has_text="merge").first).to_be_attached(timeout=WAIT_MS)
    merge_labels = graph.locator("g.node", has=page.locator("title", has_text="merge")).all_text_contents()
    assert any("+" in t for t in merge_labels), merge_labels
    skip = graph.locator("g.edge", has=page.locator("text", has_text="skip"))
    expect(skip).to_have_count(1)
    assert skip.locator("path[stroke-dasharray]").count() == 1  # drawn dashed

    # the block's editor is open: a shortcut Linear(256 → 256) in the skip through the add-a-step form (the skip is
    # the place picked first, in_features is pre-filled with the 256 it receives), drawn where the skip was
    expect(page.locator(".st-key-flow_where_1 input")).to_have_value("branch 1: at the start", timeout=WAIT_MS)
    pick(page, "flow_kind_1", "Linear")
    expect(page.locator(".st-key-flow_arg_1_in_features input")).to_have_value("256", timeout=WAIT_MS)
    page.locator(".st-key-flow_arg_1_out_features input").fill("256")
    page.locator(".st-key-flow_name_1 input").fill("short")
    press(page, "add_step_1")
    expect(page.locator(".st-key-row_1")).to_contain_text("| short] +", timeout=WAIT_MS)
    wait_idle(page)
    expect(graph.locator("g.node text", has_text="short").first).to_be_visible(timeout=WAIT_MS)
    expect(graph.locator("g.edge", has=page.locator("text", has_text="skip"))).to_have_count(0)
    no_errors(page)


def add_named(page: Page, option: str, name: str, checks: tuple[str, ...] = (), **args: str) -> None:
    """The add panel: a type, its arguments (`checks`: check boxes to tick), a name; Add."""
    before = rows(page)
    if page.locator(".st-key-add_type input").input_value() != option:
        pick(page, "add_type", option)  # (choosing a type resets the form)
    for arg in checks:
        page.locator(f".st-key-new_{arg} input").check(force=True)
    for arg, value in args.items():
        page.locator(f".st-key-new_{arg} input").fill(value)
    page.locator(".st-key-new_name input").fill(name)
    press(page, "add")
    expect(page.locator(f".st-key-row_{before}")).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)


def test_an_lstm_language_model_from_empty_by_clicking(page: Page, app_url: str) -> None:
    """LSTMLM of issue 14 (Embedding(28, 32) → LSTM(32, 64, batch_first) → Linear(64, 28)) built from an empty
    design: adding the LSTM turns the stack into a chain flow (said on the page); the graph draws the LSTM's
    call with the sequence output's shape; h is then chosen in the LSTM's editor; a mean op is added by clicking."""
    page.goto(app_url)
    wait_idle(page)
    expect(page.locator(".st-key-row_0")).to_be_visible(timeout=WAIT_MS)
    press(page, "clear")
    press(page, "clear_yes")
    expect(page.locator(".st-key-row_0")).to_have_count(0, timeout=WAIT_MS)
    wait_idle(page)
    shape = page.locator(".st-key-input_shape input")
    shape.fill("2, 35")
    shape.press("Enter")
    wait_idle(page)
    pick(page, "input_dtype", "int64")

    add_named(page, "Embedding · Linear", "embedding", num_embeddings="28", embedding_dim="32")
    pick(page, "add_type", "LSTM · Recurrent")
    expect(page.locator(".st-key-new_input_size input")).to_have_value("32")  # what arrives: (2, 35, 32)
    add_named(page, "LSTM · Recurrent", "rnn", ("batch_first",), hidden_size="64")  # (N, L, H) as Embedding gives
    expect(page.get_by_text("The network now runs as a flow: rnn gives its sequence output").first).to_be_visible(
        timeout=WAIT_MS
    )
    add_named(page, "Linear", "linear", out_features="28")  # in_features pre-filled: the LSTM's 64
    expect(page.locator(".st-key-row_2")).to_contain_text("(2, 35, 28)", timeout=WAIT_MS)
    expect(page.locator(".st-key-top_flow")).to_contain_text("embedding → rnn[output] → linear")

    graph = page.locator(".st-key-graph svg")
    expect(graph.locator("g.node text", has_text="rnn").first).to_be_visible(timeout=WAIT_MS)
    texts = graph.locator("g.node text").all_text_contents()
    assert any("LSTM" in t for t in texts) and any("(2, 35, 64)" in t for t in texts), texts
    assert any("(2, 35, 28)" in t for t in texts), texts

    # h, the last hidden state, chosen in the LSTM's own editor: (1, 2, 64) → Linear → (1, 2, 28)
    press(page, "edit_1")
    pick(page, "flow_outrow_top_1", "h (last hidden state)")
    expect(page.locator(".st-key-top_flow")).to_contain_text("rnn[h]", timeout=WAIT_MS)
    wait_idle(page)
    expect(page.locator(".st-key-row_2")).to_contain_text("(1, 2, 28)", timeout=WAIT_MS)

    # an op by clicking, in the network's flow panel: the mean over the batch's 2 sequences, at the end
    page.locator(".st-key-top_flow summary").click()
    expect(page.locator(".st-key-add_step_top")).to_be_visible(timeout=WAIT_MS)
    page.wait_for_timeout(500)  # the expander's opening animation
    page.locator(".st-key-flow_kind_top").scroll_into_view_if_needed()
    pick(page, "flow_kind_top", "mean · op")
    pick(page, "flow_where_top", "at the end")
    page.locator(".st-key-flow_arg_top_dim input").fill("1")
    press(page, "add_step_top")
    expect(page.locator(".st-key-top_flow")).to_contain_text("rnn[h] → linear → mean(dim=1)", timeout=WAIT_MS)
    wait_idle(page)
    expect(graph.locator("g.node text", has_text="mean").first).to_be_visible(timeout=WAIT_MS)
    no_errors(page)
