"""Upload a saved folder (a distilled set, a teacher) to the Hub in one commit, leaving training leftovers behind.

The token comes from huggingface_hub's usual places (`HF_TOKEN`, `hf auth login`). A distilled
set's card is first rewritten to name the repo in its usage snippets, so the local card and the pushed one agree;
its distill_config.yaml (this machine's paths) stays behind, the card carries the hyperparameters. A failed upload
loses nothing locally, and its error says how to retry.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from .config import ConfigError

# checkpoints, logs, half-written files, and the run's config with this machine's paths
IGNORE_PATTERNS = ("checkpoint-*", "checkpoint-*/**", "runs/**", "*.tmp", "distill_config.yaml",
                   "trajectories_config.yaml")
# a set pushed again replaces the data the repo held before (and a config an earlier version uploaded)
DELETE_PATTERNS = ("data/train-*.parquet", "distill_config.yaml")


class PushError(RuntimeError):
    """An upload that failed; the message says the local folder is intact and gives the command to retry."""


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "dataset",
    private: bool = False,
) -> str:
    """Create `repo_id` if it does not exist, upload `folder` to it, and return the repo's URL."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"folder {str(folder)!r} does not exist; save the result there first, then push it.")
    if repo_type == "dataset":
        from .distilled_set import set_repo_id

        set_repo_id(folder, repo_id)
    api = HfApi()
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            repo_type=repo_type,
            commit_message=f"Upload {folder.resolve().name} with hf-ssdd",
            ignore_patterns=list(IGNORE_PATTERNS),
            delete_patterns=list(DELETE_PATTERNS),
        )
    except _push_errors() as err:
        raise PushError(_failure_message(err, folder, repo_id, repo_type, private)) from err
    return str(url)


def _push_errors() -> tuple[type[Exception], ...]:
    """What an upload raises when the Hub, the network or the disk fails.

    `HfHubHTTPError` derives from exactly two bases: the HTTP client's base error (which also covers connection
    failures and timeouts) and `OSError` (local files, a missing token). Catching those bases catches all of it,
    whichever HTTP client huggingface_hub is built on.
    """
    from huggingface_hub.errors import HfHubHTTPError

    return HfHubHTTPError.__bases__


def _failure_message(err: Exception, folder: Path, repo_id: str, repo_type: str, private: bool) -> str:
    retry = ["hf-ssdd", "push", str(folder), repo_id]
    retry += ["--repo_type", repo_type] if repo_type != "dataset" else []
    retry += ["--private"] if private else []
    status = getattr(getattr(err, "response", None), "status_code", None)
    login = "log in with `hf auth login` (or set HF_TOKEN), then " if status == 401 else ""
    reason = (str(err).splitlines() or [""])[0]
    return (
        f"pushing {folder} to the Hub {repo_type} {repo_id} failed ({type(err).__name__}: {reason}); "
        f"the local folder is intact: {login}retry with `{shlex.join(retry)}`."
    )
