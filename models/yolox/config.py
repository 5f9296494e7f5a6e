# YOLOX-nano shrunk for the bundled reference model: 320x320 input, half the nano width, 3 classes
# (an mmdet 3.x config).
#
# Deployment-minded changes to mmdet's yolox_nano_8xb8-300e_coco.py, all made here in the config
# (never by editing weights), as AWML's YOLOX_opt configs do:
# - act_cfg ReLU instead of Swish (and never ReLU6): Sigmoid*x and Clip fuse and quantize badly in
#   TensorRT; ReLU folds into the convolution.
# - plain instead of depthwise convolutions: faster on CPU and in TensorRT at this width.
# - one fixed input size (no BatchSyncRandomResize); images are letterboxed to it by the task code.
# The data preprocessor's mean/std are folded into the exported graph by the raw-output wrapper,
# so a consumer feeds letterboxed BGR pixels (0-255), as Autoware's tensorrt_yolox does.

img_scale = (320, 320)  # width, height
classes = ("circle", "rectangle", "triangle")

norm_cfg = dict(type="BN", momentum=0.03, eps=0.001)
act_cfg = dict(type="ReLU")
widen = 0.125  # nano's half: trains in minutes on 2 CPU cores
channels = [int(c * widen) for c in (256, 512, 1024)]

model = dict(
    type="YOLOX",
    data_preprocessor=dict(
        type="DetDataPreprocessor",
        mean=[114.0, 114.0, 114.0],
        std=[58.0, 58.0, 58.0],
        bgr_to_rgb=False,
        pad_size_divisor=32,
    ),
    backbone=dict(
        type="CSPDarknet",
        deepen_factor=0.33,
        widen_factor=widen,
        out_indices=(2, 3, 4),
        use_depthwise=False,
        spp_kernal_sizes=(5, 9, 13),
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
    ),
    neck=dict(
        type="YOLOXPAFPN",
        in_channels=channels,
        out_channels=channels[0],
        num_csp_blocks=1,
        use_depthwise=False,
        upsample_cfg=dict(scale_factor=2, mode="nearest"),
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
    ),
    bbox_head=dict(
        type="YOLOXHead",
        num_classes=len(classes),
        in_channels=channels[0],
        feat_channels=channels[0],
        stacked_convs=2,
        strides=(8, 16, 32),
        use_depthwise=False,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
        loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, reduction="sum", loss_weight=1.0),
        loss_bbox=dict(type="IoULoss", mode="square", eps=1e-16, reduction="sum", loss_weight=5.0),
        loss_obj=dict(type="CrossEntropyLoss", use_sigmoid=True, reduction="sum", loss_weight=1.0),
        loss_l1=dict(type="L1Loss", reduction="sum", loss_weight=1.0),
    ),
    train_cfg=dict(assigner=dict(type="SimOTAAssigner", center_radius=2.5)),
    test_cfg=dict(score_thr=0.01, nms=dict(type="nms", iou_threshold=0.65)),
)

metainfo = dict(classes=classes)
