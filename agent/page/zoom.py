"""The swipe view's wheel zoom, made to feel like a map's: about 1.28× per wheel notch, up to Gradio's 15×.

Gradio's ImageSlider zooms 1.05× per wheel event whatever the event's size, so five notches of a mouse wheel give
only 1.28× while a trackpad's many small events race ahead. The script below (sent in the page's ``<head>``) catches
each real wheel event over ``#compare`` first and hands the slider as many 1.05× steps as the event's distance is
worth: a mouse notch (about 100 px, or 3 lines) becomes 5 steps (1.05⁵ ≈ 1.28×, 8× within 10 notches), a trackpad's
few pixels stay one step. The slider's own handler still does the zooming, around the cursor, within its bounds.
"""

from __future__ import annotations

PIXELS_PER_STEP = 20
"""Wheel distance worth one 1.05× step: a 100 px mouse notch gives 5 steps."""
MAX_STEPS = 8
"""Steps per event at most, so one violent flick cannot jump to the limit."""

ZOOM_HEAD = f"""
<script>
(() => {{
  const perStep = {PIXELS_PER_STEP}, maxSteps = {MAX_STEPS};
  document.addEventListener("wheel", (event) => {{
    if (!event.isTrusted || event.ctrlKey) return;
    const view = event.target instanceof Element ? event.target.closest("#compare") : null;
    if (!view || !event.deltaY) return;
    const pixels = Math.abs(event.deltaY) * (event.deltaMode === 1 ? 33 : event.deltaMode === 2 ? 400 : 1);
    const steps = Math.max(1, Math.min(maxSteps, Math.round(pixels / perStep)));
    if (steps === 1) return;
    event.preventDefault();
    event.stopPropagation();
    const init = {{
      bubbles: true, cancelable: true, clientX: event.clientX, clientY: event.clientY,
      deltaX: 0, deltaY: Math.sign(event.deltaY), deltaMode: 0
    }};
    for (let i = 0; i < steps; i++) event.target.dispatchEvent(new WheelEvent("wheel", init));
  }}, {{ capture: true, passive: false }});
}})();
</script>
"""
