"""The Gradio chat page (``app.py`` is its thin entry point)."""
