"""Every hyper-parameter of a run in one dataclass, stored as JSON (never pickled)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from keras_frcnn.errors import UserError


ROI_BOX_FEATURES = ("none", "size", "size_position")


@dataclass
class Config:
    """Faster R-CNN configuration; defaults fit chromosomes (small, elongated objects)."""

    # Classes (object classes only; the model adds background as class 0).
    class_names: tuple[str, ...] = ()

    # Input.
    im_size: int = 600  # shorter side after resizing
    max_size: int = 1000  # cap on the longer side
    hflip: bool = False
    vflip: bool = False
    rot90: bool = False
    mirror_labels: str = "follow_object"  # or "swap_lr"; see keras_frcnn.data.augment

    # Backbone.
    network: str = "vgg16"  # vgg16 | resnet50 | tiny
    weights: str | None = None  # None | "imagenet" | path to a weights file
    freeze_blocks: int = 0  # number of early backbone blocks kept frozen
    freeze_batchnorm: bool | None = None  # None: frozen statistics when pretrained weights are loaded
    tiny_filters: tuple[int, ...] = (16, 32, 64, 64)  # widths of the tiny backbone's blocks
    tiny_stride: int = 16  # the tiny backbone's feature stride: 16 (2x2 pooling after 4 blocks) or 8 (after 3)

    # Anchors (sizes in pixels of the resized image; ratio = height / width).
    anchor_scales: tuple[float, ...] = (16.0, 32.0, 64.0, 128.0)
    anchor_ratios: tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)

    # RPN training targets.
    rpn_positive_iou: float = 0.7
    rpn_negative_iou: float = 0.3
    rpn_batch_size: int = 256  # sampled anchors per image (N_cls in Eq. 1)
    rpn_positive_fraction: float = 0.5
    rpn_allowed_border: float = 0.0  # anchors crossing the border by more are ignored in training
    rpn_head_channels: int = 512

    # Proposals.
    pre_nms_top_n_train: int = 6000
    post_nms_top_n_train: int = 300
    pre_nms_top_n_test: int = 3000
    post_nms_top_n_test: int = 300
    rpn_nms_iou: float = 0.7
    rpn_min_size: float = 4.0

    # RoI sampling and pooling.
    num_rois: int = 64  # RoIs sampled per image in training
    roi_positive_fraction: float = 0.25
    roi_positive_iou: float = 0.5
    roi_negative_iou_low: float = 0.0
    pool_size: int = 7
    roi_align: bool = False
    # Bilinear samples per bin side; None: 14 samples per RoI side (2 per bin for a 7x7 pool, 1 for
    # ResNet50's 14x14 pool, whose conv5 head then halves it: the same sampling density).
    roi_sampling_ratio: int | None = None
    head_units: int = 4096  # fc6/fc7 width (VGG head and tiny head)
    # What the class head learns of each RoI's geometry, relative to the image: "none" (the pooled
    # features only, as Faster R-CNN), "size" (width and height) or "size_position" (and the centre:
    # in a karyogram the place tells much of a chromosome's identity). RoI pooling itself keeps no size.
    roi_box_features: str = "none"

    # Loss, the paper's Eq. 1.
    loss_lambda: float = 10.0
    rpn_n_cls: float = 256.0
    rpn_n_reg: float | None = None  # None: number of anchor locations of the feature map
    head_n_cls: float | None = None  # None: number of sampled RoIs
    head_n_reg: float | None = None  # None: number of sampled RoIs
    smooth_l1_sigma: float = 3.0  # RPN
    head_loss_lambda: float = 1.0  # the head's lambda (Fast R-CNN balance; N_cls = N_reg = RoIs)
    head_smooth_l1_sigma: float = 1.0
    box_target_scales: tuple[float, ...] = (10.0, 10.0, 5.0, 5.0)  # head regression target scaling

    # Inference.
    score_threshold: float = 0.05
    nms_iou: float = 0.3
    max_detections: int = 100
    label_assignment: str = "none"  # "optimal" / "karyotype": labels per image capped (keras_frcnn.model.label_assignment)
    extra_copy_score: float = 0.9  # karyotype assignment: a label's extra copy (trisomy) needs this probability

    # Training data.
    max_boxes: int = 100  # ground-truth boxes per image after padding
    seed: int = 0  # data split, shuffling, augmentation and in-graph sampling

    def __post_init__(self):
        for name in ("class_names", "tiny_filters", "anchor_scales", "anchor_ratios", "box_target_scales"):
            setattr(self, name, tuple(getattr(self, name)))
        if self.mirror_labels not in ("follow_object", "swap_lr"):
            raise UserError(f"mirror_labels must be 'follow_object' or 'swap_lr', not {self.mirror_labels!r}")
        if self.roi_sampling_ratio is not None and not (isinstance(self.roi_sampling_ratio, int) and self.roi_sampling_ratio >= 1):
            raise UserError(f"roi_sampling_ratio must be a positive integer or null, not {self.roi_sampling_ratio!r}")
        if self.label_assignment not in ("none", "optimal", "karyotype"):
            raise UserError(f"label_assignment must be 'none', 'optimal' or 'karyotype', not {self.label_assignment!r}")
        if self.roi_box_features not in ROI_BOX_FEATURES:
            raise UserError(f"roi_box_features must be one of {', '.join(ROI_BOX_FEATURES)}, not {self.roi_box_features!r}")
        if self.tiny_stride not in (8, 16):
            raise UserError(f"tiny_stride must be 8 or 16, not {self.tiny_stride!r}")
        if self.network not in ("vgg16", "resnet50", "tiny"):
            raise UserError(f"network must be vgg16, resnet50 or tiny, not {self.network!r}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_anchors(self) -> int:
        return len(self.anchor_scales) * len(self.anchor_ratios)

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        data = dict(data)
        stride = data.pop("feature_stride", 16)  # saved before the stride came from the backbone
        if stride != 16:
            raise UserError(f"this config was saved with feature_stride {stride}; the stride now comes from the "
                            "backbone (16 for vgg16, resnet50 and tiny): remove the key")
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**data)


