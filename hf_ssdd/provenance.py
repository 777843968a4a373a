"""Provenance: how a card names its inputs so that a reader on any machine can find them, and their licences.

A Hub dataset or model by id and commit, a built-in source by name, a local folder by its name only: a path means
nothing on another machine and may name the user. Licences are Hub licence ids, read from the input's own card.
No project imports: `config` checks `--license` against `HUB_LICENSES`, `data.describe_source` names a source with
these helpers, and `dataset_card` and `model_cards` write what was found.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

# Licence ids a Hub card accepts (https://huggingface.co/docs/hub/repositories-licenses).
HUB_LICENSES = (
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0",
    "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0",
    "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1",
    "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research",
    "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0", "odc-by", "odbl", "openmdw-1.0",
    "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr",
    "deepfloyd-if-license", "fair-noncommercial-research-license", "llama2", "llama3", "llama3.1", "llama3.2",
    "llama3.3", "llama4", "grok2-community", "gemma", "unknown", "other",
)


def public_name(name_or_path: str | None) -> str | None:
    """A local path by its folder's name, anything else (a Hub id, a built-in name) as it is: a path means nothing on
    another machine and may name the user."""
    if name_or_path is None or not Path(name_or_path).exists():
        return name_or_path
    return Path(name_or_path).resolve().name


def where(entry: dict) -> str | None:
    """How a reader finds an input (`metadata["source"]` or `["teacher"]`), in Markdown, e.g. "`org/name`, revision
    `abc`", "`fashion_mnist` (on the Hub: `zalando-datasets/fashion_mnist`)" or "local folder `vit`, `model.safetensors`
    sha256 `…`"; None when nothing is recorded."""
    if "folder" in entry:
        hashes = "".join(f", `{name}` sha256 `{digest}`" for name, digest in (entry.get("sha256") or {}).items())
        return f"local folder `{entry['folder']}`{hashes}"
    if not entry.get("id"):
        return None
    hub = entry.get("hub_id")
    text = f"`{entry['id']}`" + (f" (on the Hub: `{hub}`)" if hub and hub != entry["id"] else "")
    return text + (f", revision `{entry['revision']}`" if entry.get("revision") else "")


def snapshot_commit(path: str | Path | None) -> str | None:
    """The commit a file of the Hub cache comes from: the name of its snapshot folder, when that is a commit hash
    (None for a file elsewhere, e.g. a local folder)."""
    commit = Path(path).parent.name if path else ""
    return commit if re.fullmatch(r"[0-9a-f]{40}", commit) else None


def hub_card(repo_id: str, revision: str | None):
    """The card metadata of a Hub dataset and the commit it was read at: the name of its snapshot folder in the Hub
    cache. `(None, None)` when neither the Hub nor the cache has it: the set is still saved, its licence unknown."""
    from huggingface_hub import DatasetCard, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        path = Path(hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision))
    except HfHubHTTPError.__bases__:  # the HTTP client's errors and OSError: no network, no such repo or file
        return None, None
    return DatasetCard.load(path).data, snapshot_commit(path)


def card_license(card_data, where: str) -> dict | None:
    """`{"id", "from"}` (and `name`, `link` for `license: other`) from a card's metadata, None when it gives none."""
    license = card_data.get("license") if card_data is not None else None
    if not license or license == "unknown":
        return None
    found = {"id": license, "from": where}
    for key in ("name", "link"):
        if card_data.get(f"license_{key}"):
            found[key] = card_data.get(f"license_{key}")
    return found


def local_license(folder: Path) -> dict | None:
    """The licence of a local dataset folder: its README.md card's, else `datasets`' dataset_info.json's (of the
    folder or of a split in it, as `save_to_disk` writes them) when that text is a Hub licence id."""
    from datasets import DatasetInfo
    from huggingface_hub import DatasetCard

    name = folder.resolve().name
    if (folder / "README.md").is_file():
        found = card_license(DatasetCard.load(folder / "README.md").data, f"the card of the local folder `{name}`")
        if found:
            return found
    for info in sorted(folder.glob("dataset_info.json")) + sorted(folder.glob("*/dataset_info.json")):
        license = (DatasetInfo.from_directory(str(info.parent)).license or "").strip().lower()
        if license in HUB_LICENSES and license != "unknown":
            return {"id": license, "from": f"the dataset_info.json of the local folder `{name}`"}
    return None


def with_local_paths(metadata: dict, config_file: Path) -> dict:
    """`metadata` with `id` set, for a local source and teacher, to the path the run was given (its config file
    beside the card): on the machine that made the set they can be loaded again. The card never shows it
    (`public_metadata`)."""
    if not config_file.is_file():
        return metadata
    run = yaml.safe_load(config_file.read_text()) or {}
    for key, option in (("source", "dataset"), ("teacher", "teacher")):
        entry = metadata.get(key) or {}
        if "folder" in entry and run.get(option):
            entry["id"] = run[option]
    if run.get("trajectories") and "hyperparameters" in metadata:
        metadata["hyperparameters"]["trajectories"] = run["trajectories"]
    return metadata


def public_metadata(metadata: dict) -> dict:
    """A copy of `metadata` for the card: plain lists and dicts (safe YAML), and a local source or teacher by folder
    name only, without the path `with_local_paths` may have put in."""
    public = json.loads(json.dumps(metadata))
    for key in ("source", "teacher"):
        if "folder" in (public.get(key) or {}):
            public[key].pop("id", None)
    hyperparameters = public.get("hyperparameters") or {}
    if hyperparameters.get("trajectories"):
        hyperparameters["trajectories"] = public_name(hyperparameters["trajectories"])
    return public
