"""Start gs_tracker_node on a camera topic (needs a ROS 2 install with launch_ros).

    ros2 launch gs_tracker_ros tracker.launch.py image_topic:=/camera/image_raw
    ros2 launch gs_tracker_ros tracker.launch.py image_topic:=/cam/image_raw namespace:=/robot1 \
        params_file:=/path/to/my_tracker.yaml camera_info_topic:=/cam/info

camera_info pairs with the image topic like image_transport's CameraSubscriber: by default the
sibling of image_topic (/cam/image_raw -> /cam/camera_info).

Without launch_ros (e.g. the project's venv) the same node starts with
    .venv/bin/gs_tracker_node --ros-args -r __ns:=/robot1 --params-file config/tracker.yaml \
        -r image:=/camera/image_raw
(test/test_launch_files.py evaluates this file as ros2 launch would and runs the command it gives).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare("gs_tracker_ros"), "config", "tracker.yaml"])
    image_topic = LaunchConfiguration("image_topic")
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    camera_info_topic = LaunchConfiguration("camera_info_topic")
    autostart = LaunchConfiguration("autostart")
    return LaunchDescription([
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="sensor_msgs/Image topic to track points on"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="parameters of gs_tracker_node (YAML)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and of its topics (tracks, tracks_image)"),
        DeclareLaunchArgument("autostart", default_value="true", choices=["true", "false"],
                              description="configure and activate the lifecycle node at start-up; false: "
                                          "drive it with ros2 lifecycle set /<namespace>/gs_tracker_node ..."),
        DeclareLaunchArgument("camera_info_topic", default_value="camera_info",
                              description="sensor_msgs/CameraInfo topic; the default (camera_info, not "
                                          "remapped) pairs it with image_topic like image_transport: its "
                                          "sibling, /camera/image_raw -> /camera/camera_info"),
        Node(
            package="gs_tracker_ros",
            executable="gs_tracker_node",
            name="gs_tracker_node",
            namespace=namespace,
            parameters=[params_file, {"autostart": autostart}],
            remappings=[("image", image_topic), ("camera_info", camera_info_topic)],
            output="screen",
            emulate_tty=True,
        ),
    ])
