"""Entry point of the Gradio app (a Hugging Face Space runs this file).

The app itself lives in ``hf_unlearn.ui``; this file only builds and launches it.
"""

from hf_unlearn.ui import build_app

if __name__ == "__main__":
    build_app().queue().launch()
