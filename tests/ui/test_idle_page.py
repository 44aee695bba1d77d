"""An open page that nobody touches, and the app behind it, cost the machine next to nothing. Gradio's status tracker
left a loop asking for a frame at every frame once the page had loaded (60 frames a second for as long as the page
stayed open: 5-6 CPU-s a minute of chromium, taken from the training on a 2-core CPU); the app serves that file
repaired (``studio.ui.frontend``)."""

import time

import pytest
from conftest import free_port, launch_chromium, start_web_app

from studio.ui.frontend import LOOP, gradio_assets, repaired


def test_the_repair_applies_to_the_installed_gradio_and_to_nothing_else():
    source = next(gradio_assets().glob("statustracker-*.js")).read_text(encoding="utf-8")
    fixed = repaired(source)
    loop = LOOP.search(source).group(0)
    assert fixed is not None and loop not in fixed  # the loop goes on only while its element is on the page
    assert fixed.count("isConnected") == source.count("isConnected") + 1
    assert 0 < len(fixed) - len(source) < 60  # one condition, nothing else
    assert repaired("function f(){return 1}") is None  # another file, or a Gradio without the loop: unchanged
    assert repaired(source.replace(loop, loop + ";" + loop)) is None  # not sure which loop: unchanged


def test_the_app_looks_for_work_at_gradios_windows_pace(tmp_path):
    """Gradio's queue looked for work every 1 ms on Linux (3.3 CPU-s a minute of an idle app); the app sets the pace
    Gradio uses on Windows (0.6)."""
    import launch

    from studio.ui.app import QUEUE_CHECK_S, QUEUE_PROGRESS_S
    from studio.ui.app import launch as launch_app

    demo = launch_app(launch.parse_args(["--port", str(free_port()), "--runs-dir", str(tmp_path)]), block=False)
    try:
        assert demo._queue.sleep_when_free == QUEUE_CHECK_S == 0.05
        assert demo._queue.progress_update_sleep_when_free == QUEUE_PROGRESS_S == 0.1
    finally:
        demo.close()


# Counts the page's requests for an animation frame (Svelte's loops ask through the global function).
COUNT_FRAMES = """window.framesAsked = 0;
const askForFrame = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = callback => { window.framesAsked++; return askForFrame(callback); };"""


@pytest.mark.browser
def test_an_idle_page_draws_no_frames(tmp_path):
    from playwright.sync_api import sync_playwright

    port = free_port()
    app = start_web_app(tmp_path / "runs", port)
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.add_init_script(COUNT_FRAMES)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("tab", name="1 · Data").wait_for()
            served = page.evaluate("""async () => {
                const file = performance.getEntriesByType('resource').map(e => e.name)
                    .find(n => /statustracker-[\\w-]+\\.js$/.test(n));
                return (await fetch(file)).text(); }""")
            assert "isConnected" in served  # the repaired file, not Gradio's
            # Once its load events have answered (the plan, "Will it fit?": seconds on a slow machine), the page asks
            # for no frame for 5 s together, its idle poll included; unrepaired it asked for 362 in every 5 s, for as
            # long as it stayed open. Counted rather than timed: the main thread's time varies with the machine.
            deadline, quiet_since, asked = time.time() + 60, time.time(), page.evaluate("window.framesAsked")
            while time.time() - quiet_since < 5:
                assert time.time() < deadline, "the idle page kept asking for frames"
                time.sleep(0.25)
                before, asked = asked, page.evaluate("window.framesAsked")
                if asked != before:
                    quiet_since = time.time()
            # and the count counts: a frame asked for the page's way is one more
            assert page.evaluate("new Promise(r => requestAnimationFrame(() => r(window.framesAsked)))") == asked + 1
            browser.close()
    finally:
        app.terminate()
        app.wait(30)
