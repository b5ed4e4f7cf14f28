"""OpenAI's Batch API: backlogs at half price (``OPENAI_BATCH``).

``state.py`` is the local record that makes submission crash-safe,
``api.py`` the Files/Batches calls, ``coordinator.py`` what one run does:
finish and collect earlier batches, hold their items, submit new ones.
"""

from .coordinator import BatchRun, batch_path_in_use
from .state import BatchState, state_path

__all__ = ["BatchRun", "BatchState", "batch_path_in_use", "state_path"]
