"""``detector:DIR``: a folder written by ``changeagent detector train`` as a mask provider, with a confidence
measured on held-out datasets.

The folder holds ``model.onnx`` and its sidecar; the ONNX provider runs it tiled with overlap. The confidence is
the detector's leave-one-dataset-out calibration (``calibration.json`` beside this module, or one in the folder),
looked up by the pair's GSD band and sensor kind exactly as the classical path's is; without a calibration the
sidecar's validation figure is used and the reason says it was not held out.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from tools.change_detection.calibration import Calibration, gsd_band, held_out_basis, sensor_kind
from tools.change_detection.detector import pair_gsd_m
from tools.detector.layout import SIZE_MULTIPLE
from tools.learned_masks.provider import OnnxMaskProvider
from tools.learned_masks.sidecar import DetectorSpec, Device
from tools.masks import ChangeMask, ConfidenceBasis
from tools.pairs import ImagePair
from tools.raster import InputError

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
REGENERATE = "changeagent detector lodo DATA --write-calibration"
MODEL_FILE = "model.onnx"
WHOLE_PAIR_SIDE = 1024


@functools.cache
def load_detector_calibration(path: Path = CALIBRATION_PATH) -> Calibration | None:
    """The stored detector calibration, None when there is none; a clear error when it is unreadable."""
    if not path.is_file():
        return None
    try:
        return Calibration.model_validate_json(path.read_text())
    except ValueError as exc:
        raise InputError(f"detector calibration {path} is unreadable ({exc}); regenerate it with {REGENERATE}") from exc


class DetectorMaskProvider(OnnxMaskProvider):
    """The project's trained detector: the ONNX provider plus a held-out calibrated confidence."""

    calibration: Calibration | None = None

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        sidecar: str | Path | None = None,
        spec: DetectorSpec | dict[str, Any] | None = None,
        device: Device = "auto",
    ) -> DetectorMaskProvider:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"detector folder not found: {folder}")
        model = folder / MODEL_FILE
        if not model.is_file():
            raise InputError(
                f"detector folder {folder} has no {MODEL_FILE}; train one with "
                f"`changeagent detector train DATA --out {folder}`"
            )
        provider = cls(model, sidecar, spec, device)
        provider.name = f"detector:{provider.spec.name or folder.name}"
        own = folder / "calibration.json"
        provider.calibration = load_detector_calibration(own if own.is_file() else CALIBRATION_PATH)
        return provider

    def tile_for(self, height: int, width: int) -> tuple[int, int]:
        """Pairs up to ``WHOLE_PAIR_SIDE`` in one pass (the network is fully convolutional: no tile seams, no
        overlap computed twice); larger ones in the sidecar's tiles, so memory stays bounded."""
        if max(height, width) <= WHOLE_PAIR_SIDE:
            return (-(-height // SIZE_MULTIPLE) * SIZE_MULTIPLE, -(-width // SIZE_MULTIPLE) * SIZE_MULTIPLE)
        return super().tile_for(height, width)

    def provide(self, pair: ImagePair) -> ChangeMask:
        mask = super().provide(pair)
        gsd = pair_gsd_m(pair)
        band, sensor = gsd_band(gsd), sensor_kind(pair.scaling)
        update: dict[str, Any] = {"gsd_m": gsd, "min_object_pixels": self.spec.min_object_pixels or None}
        if self.calibration is None:
            update["basis"] = ConfidenceBasis(
                kind="validation", detector="learned", binary_accuracy=self.spec.confidence
            )
        else:
            entry, fallback = self.calibration.lookup(band, sensor)
            update.update(
                confidence=round(entry.confidence, 3),
                basis=held_out_basis(entry, "learned", band, sensor, fallback),
                calibration_key=entry.key,
                reliable=entry.reliable,
            )
        return mask.model_copy(update={"source": mask.source.model_copy(update=update)})
