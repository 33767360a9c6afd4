"""Source datasets the ChangeChat builder reads: LEVIR-CC captions and LEVIR-MCI change maps.

Layout, as LEVIR-MCI is distributed (and as :func:`deltavlm.synthetic.write_levir_mci` writes it)::

    ROOT/images/{train,val,test}/{A,B,label}/NAME.png
    ROOT/LevirCCcaptions.json            # LEVIR-CC (Karpathy) format: {"images": [{filename, split, sentences}]}

Captions are also read in the flat form ``{"NAME.png": [five captions]}`` with split lists ``{split}.txt``
beside it (how the Change-Agent repository ships them), so a captions file without images still yields
the caption records. A pair without a change map has ``label_path=None``; the builder then skips the
map-derived types for it and says so, rather than guessing labels from captions.

Label PNGs are decoded through :func:`deltavlm.rules.classes_from_label_values` with a configurable value
convention (LEVIR-MCI's 0 / 128 / 255 by default), so a file written in another convention fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel

from deltavlm.rules import LEVIR_MCI_LABEL_VALUES, ChangeClass, classes_from_label_values

SPLITS: tuple[str, ...] = ("train", "val", "test")
CAPTION_FILES: tuple[str, ...] = ("LevirCCcaptions.json", "captions_all.json", "captions.json")
"""Caption files looked for in the source root, in this order."""


class DatasetNotFoundError(FileNotFoundError):
    """The source dataset is not where it was expected; the message says what to get and where to put it."""


class SourcePair(BaseModel):
    """One bi-temporal pair of the source dataset."""

    name: str
    split: str
    t1: Path
    t2: Path
    label: Path | None
    captions: list[str]
    changeflag: int | None = None

    def rel_images(self, images_root: Path) -> list[str]:
        """The two image paths relative to the images root, as ChangeChat records store them."""
        return [_relative(self.t1, images_root), _relative(self.t2, images_root)]

    def rel_label(self, images_root: Path) -> str | None:
        return None if self.label is None else _relative(self.label, images_root)


class SourceDataset(BaseModel):
    """The pairs of a source folder, and where its images live."""

    root: Path
    images_root: Path
    captions_file: Path
    pairs: list[SourcePair]

    def split(self, name: str) -> list[SourcePair]:
        return [p for p in self.pairs if p.split == name]

    @property
    def splits(self) -> list[str]:
        present = {p.split for p in self.pairs}
        return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _not_found(root: Path, what: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{what} not found under {root}. Expected the LEVIR-MCI layout: images/{{train,val,test}}/{{A,B,label}}/"
        "NAME.png plus LevirCCcaptions.json (LEVIR-CC captions, five per pair). Get LEVIR-MCI from "
        "https://github.com/Chen-Yang-Liu/LEVIR-MCI (it includes LEVIR-CC's captions), unpack it, and pass its "
        "folder as the source; or write a synthetic one with `python -m deltavlm.data.build --synthetic`."
    )


def find_captions_file(root: Path) -> Path:
    """The captions JSON of a source root (or ``root`` itself when it is a file)."""
    root = Path(root)
    if root.is_file():
        return root
    for name in CAPTION_FILES:
        if (root / name).is_file():
            return root / name
    raise _not_found(root, f"a captions file ({', '.join(CAPTION_FILES)})")


def _karpathy(data: Mapping[str, object]) -> list[tuple[str, str, list[str], int | None]]:
    out = []
    for image in data["images"]:  # type: ignore[union-attr]
        sentences = image["sentences"]
        captions = [" ".join(s["tokens"]) if s.get("tokens") else s["raw"].strip(" .") for s in sentences]
        flag = image.get("changeflag")
        out.append((image["filename"], image.get("split") or image["filepath"], captions, flag))
    return out


def _flat(data: Mapping[str, list[str]], folder: Path) -> list[tuple[str, str, list[str], int | None]]:
    split_of: dict[str, str] = {}
    for split in SPLITS:
        listing = folder / f"{split}.txt"
        if listing.is_file():
            for line in listing.read_text().split():
                split_of[line.strip()] = split
    out = []
    for name, captions in data.items():
        split = split_of.get(name) or next((s for s in SPLITS if name.startswith(f"{s}_")), None)
        if split is None:
            raise ValueError(f"no split for {name}: add {{train,val,test}}.txt lists beside the captions file")
        out.append((name, split, list(captions), None))
    return out


def read_captions(path: Path) -> list[tuple[str, str, list[str], int | None]]:
    """``(file name, split, captions, changeflag or None)`` per pair, from either caption format."""
    path = Path(path)
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "images" in data:
        return _karpathy(data)
    if isinstance(data, dict):
        return _flat(data, path.parent)
    raise ValueError(f"{path}: neither LEVIR-CC's {{'images': [...]}} nor a {{name: [captions]}} mapping")


def read_source(
    root: str | Path,
    captions_file: str | Path | None = None,
    images_root: str | Path | None = None,
    splits: Sequence[str] | None = None,
    require_images: bool = True,
) -> SourceDataset:
    """Pairs of a LEVIR-CC / LEVIR-MCI folder.

    ``require_images=False`` accepts a captions file without images (caption records only); otherwise a
    missing A or B image is an error naming the file.
    """
    root = Path(root)
    if not root.exists():
        raise _not_found(root, "the source folder")
    captions_path = Path(captions_file) if captions_file else find_captions_file(root)
    base = root if root.is_dir() else root.parent
    images = Path(images_root) if images_root else (base / "images" if (base / "images").is_dir() else base)
    pairs = []
    for name, split, captions, flag in read_captions(captions_path):
        if splits is not None and split not in splits:
            continue
        folder = images / split
        t1, t2, label = folder / "A" / name, folder / "B" / name, folder / "label" / name
        if require_images:
            for path in (t1, t2):
                if not path.is_file():
                    raise _not_found(images, f"image {path.relative_to(images)}")
        pairs.append(
            SourcePair(
                name=name,
                split=split,
                t1=t1,
                t2=t2,
                label=label if label.is_file() else None,
                captions=captions,
                changeflag=flag,
            )
        )
    if not pairs:
        raise _not_found(root, "any pair of the requested splits")
    return SourceDataset(root=base, images_root=images, captions_file=captions_path, pairs=pairs)


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"could not read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_class_mask(path: str | Path, label_values: Mapping[int, ChangeClass] = LEVIR_MCI_LABEL_VALUES) -> np.ndarray:
    """A label PNG as an H×W class mask (:class:`deltavlm.rules.ChangeClass` indices).

    Colour labels are read in RGB order so that "first channel" means red, as the convention states.
    """
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise OSError(f"could not read label {path}")
    if label.ndim == 3:
        label = cv2.cvtColor(label[..., :3], cv2.COLOR_BGR2RGB)
    return classes_from_label_values(label, label_values)
