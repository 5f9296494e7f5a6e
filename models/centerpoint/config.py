# CenterPoint (pillars) for the modelzoo reference: mmdet3d's
# centerpoint_pillar02_second_secfpn_head-circlenms_8xb4-cyclic-20e_nus-3d.py, shrunk to a 51.2 m square,
# 0.4 m pillars, narrow channels and one head task of three classes (car, pedestrian, bicycle), so that
# it trains in minutes on a CPU. One task: Autoware's lidar_centerpoint reads a single heatmap/reg/...
# set of head outputs.
_base_ = ["mmdet3d::centerpoint/centerpoint_pillar02_second_secfpn_head-circlenms_8xb4-cyclic-20e_nus-3d.py"]

point_cloud_range = [-25.6, -25.6, -3.0, 25.6, 25.6, 3.0]
voxel_size = [0.4, 0.4, 6.0]
grid_size = [128, 128, 1]  # (range max - min) / voxel size, x y z
out_size_factor = 2
class_names = ["car", "pedestrian", "bicycle"]
metainfo = dict(classes=class_names)

# Points: x y z intensity time in the .bin files. The key frame plus `sweeps_num` past sweeps (moved into
# the key frame, time lag in column 4); the model reads x y z intensity time-lag, the layout Autoware's
# lidar_centerpoint feeds for point_feature_size 5 (densification_params.num_past_frames = sweeps_num).
load_dim = 5
use_dim = [0, 1, 2, 3, 4]
sweeps_num = 1
load_points = [
    dict(type="LoadPointsFromFile", coord_type="LIDAR", load_dim=load_dim, use_dim=load_dim, backend_args=None),
    dict(
        type="LoadPointsFromMultiSweeps",
        sweeps_num=sweeps_num,
        load_dim=load_dim,
        use_dim=use_dim,
        pad_empty_sweeps=True,
        remove_close=True,
        test_mode=True,
        backend_args=None,
    ),
]

model = dict(
    data_preprocessor=dict(
        voxel_layer=dict(
            max_num_points=32,  # Autoware's node fills 32 points per pillar
            voxel_size=voxel_size,
            point_cloud_range=point_cloud_range,
            max_voxels=(12000, 16000),
        )
    ),
    pts_voxel_encoder=dict(
        in_channels=len(use_dim),
        feat_channels=[32],
        voxel_size=voxel_size,
        point_cloud_range=point_cloud_range,
    ),
    pts_middle_encoder=dict(in_channels=32, output_shape=(grid_size[1], grid_size[0])),
    pts_backbone=dict(in_channels=32, out_channels=[32, 48, 64], layer_nums=[1, 2, 2], layer_strides=[2, 2, 2]),
    pts_neck=dict(in_channels=[32, 48, 64], out_channels=[32, 32, 32], upsample_strides=[1, 2, 4]),
    pts_bbox_head=dict(
        in_channels=96,
        tasks=[dict(num_class=len(class_names), class_names=class_names)],
        share_conv_channel=32,
        separate_head=dict(head_conv=32),
        bbox_coder=dict(
            post_center_range=[*point_cloud_range[:2], -10.0, *point_cloud_range[3:5], 10.0],
            max_num=200,
            score_threshold=0.1,
            out_size_factor=out_size_factor,
            voxel_size=voxel_size[:2],
            pc_range=point_cloud_range[:2],
        ),
    ),
    train_cfg=dict(
        pts=dict(
            grid_size=grid_size,
            voxel_size=voxel_size,
            out_size_factor=out_size_factor,
            point_cloud_range=point_cloud_range,
            max_objs=100,
            min_radius=2,
        )
    ),
    test_cfg=dict(
        pts=dict(
            post_center_limit_range=[*point_cloud_range[:2], -10.0, *point_cloud_range[3:5], 10.0],
            max_per_img=200,
            # circle NMS compares squared BEV centre distances with min_radius: 1.0 -> 1 m.
            min_radius=[1.0],
            score_threshold=0.1,
            pc_range=point_cloud_range[:2],
            out_size_factor=out_size_factor,
            voxel_size=voxel_size[:2],
            nms_type="circle",
            post_max_size=83,
        )
    ),
)

test_pipeline = [*load_points, dict(type="Pack3DDetInputs", keys=["points"])]
# What reference.py's training loop does (it loads points with the task's loader, which equals
# load_points on these infos, and augments in numpy).
train_pipeline = [
    *load_points,
    dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True),
    dict(type="RandomFlip3D", flip_ratio_bev_horizontal=0.5, flip_ratio_bev_vertical=0.5),
    dict(type="GlobalRotScaleTrans", rot_range=[-0.785, 0.785], scale_ratio_range=[0.95, 1.05]),
    dict(type="Pack3DDetInputs", keys=["points", "gt_bboxes_3d", "gt_labels_3d"]),
]
