"""Entry point of the Gradio app (a Hugging Face Space runs this file; so does `bash scripts/app.sh`).

The app itself lives in ``hf_unlearn.ui``; this file only builds and launches it.
"""

import os

from hf_unlearn.ui import launch

if __name__ == "__main__":
    launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
