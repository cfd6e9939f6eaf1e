"""main.py as it would be if google-cloud-storage were imported at start (for comparison)."""

import google.cloud.storage  # noqa: F401 - the point: pay the import before the first request

from main import kakao_callback, kakao_refresh  # noqa: F401
