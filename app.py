"""Entry point of the Gradio app (a Hugging Face Space runs this file; so does `bash scripts/app.sh`).

The app itself lives in ``hf_unlearn.ui``; this file only builds and launches it.
"""

import os

from hf_unlearn.errors import UnlearnError
from hf_unlearn.ui import launch

if __name__ == "__main__":
    try:
        launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    except UnlearnError as exc:  # a bad setting (e.g. HF_UNLEARN_FILES_MAX_AGE_S): one line, not a traceback
        raise SystemExit(f"error: {exc}") from None
