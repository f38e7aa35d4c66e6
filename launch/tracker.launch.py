"""Start gs_tracker_node on a camera topic (needs a ROS 2 install with launch_ros).

    ros2 launch gs_tracker_ros tracker.launch.py image_topic:=/camera/image_raw
    ros2 launch gs_tracker_ros tracker.launch.py image_topic:=/cam/image_raw namespace:=/robot1 \
        params_file:=/path/to/my_tracker.yaml image_transport:=compressed method:=probfuse-fast
    ros2 launch gs_tracker_ros tracker.launch.py --show-args      # every argument (docs/ros.md)

The node is a launch_ros LifecycleNode. With autostart (the node's parameter, true in the
package's config/tracker.yaml) it configures and activates itself at start-up, as nav2's lifecycle
nodes do; with autostart:=false it waits, unconfigured, for `ros2 lifecycle set` or for ChangeState
events that an including launch file emits for it.

The arguments method, image_qos, image_transport and autostart set the node parameter of that name
when given; left empty (their default) the params file's value stands, so a params_file of your own
is never overridden by a default here.

camera_info pairs with the image topic like image_transport's CameraSubscriber: by default the
sibling of image_topic (/cam/image_raw -> /cam/camera_info).

Without launch_ros (e.g. the project's venv) the same node starts with
    .venv/bin/gs_tracker_node --ros-args -r __ns:=/robot1 --params-file config/tracker.yaml \
        -r image:=/camera/image_raw -p image_transport:=compressed
(test/test_launch_files.py evaluates this file as ros2 launch would and runs the command it gives).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.substitutions import FindPackageShare

PACKAGE = "gs_tracker_ros"
NODE = "gs_tracker_node"

# Launch arguments that set a node parameter when given: name -> (description, choices). Empty
# (the default) = the params file's value.
NODE_PARAMETERS = {
    "method": ("tracking method: probfuse (live), probfuse-fast (60 Hz cameras), probfuse-accurate, klt, "
               "dis-chain, ... (docs/ros.md); empty: the params file's (probfuse in config/tracker.yaml).", None),
    "image_qos": ("QoS of the image subscription: auto (reliable when the camera publishes reliable, else best "
                  "effort), reliable, sensor_data or system_default; empty: the params file's (auto).",
                  ["", "auto", "reliable", "sensor_data", "system_default"]),
    "image_transport": ("raw (sensor_msgs/Image on image_topic) or compressed (CompressedImage on "
                        "<image_topic>/compressed); empty: the params file's (raw).", ["", "raw", "compressed"]),
    "autostart": ("configure and activate the lifecycle node at start-up; false: drive it with ros2 lifecycle "
                  "set /<namespace>/gs_tracker_node configure / activate; empty: the params file's (true).",
                  ["", "true", "false"]),
}


def node_parameter_overrides(context):
    """``{parameter: value}`` of the NODE_PARAMETERS arguments that were given (autostart as a bool)."""
    values = {}
    for name in NODE_PARAMETERS:
        text = LaunchConfiguration(name).perform(context).strip()
        if text:
            values[name] = text == "true" if name == "autostart" else text
    return values


def start_node(context):
    overrides = node_parameter_overrides(context)
    parameters = [LaunchConfiguration("params_file")] + ([overrides] if overrides else [])
    return [LifecycleNode(
        package=PACKAGE,
        executable=NODE,
        name=NODE,
        namespace=LaunchConfiguration("namespace"),
        parameters=parameters,  # later entries win: the arguments given over the params file
        remappings=[("image", LaunchConfiguration("image_topic")),
                    ("camera_info", LaunchConfiguration("camera_info_topic"))],
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "tracker.yaml"])
    return LaunchDescription([
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="sensor_msgs/Image topic to track points on (the base topic with "
                                          "image_transport:=compressed)"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="parameters of gs_tracker_node (YAML)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and of its topics (tracks, tracks_image)"),
        DeclareLaunchArgument("camera_info_topic", default_value="camera_info",
                              description="sensor_msgs/CameraInfo topic; the default (camera_info, not "
                                          "remapped) pairs it with image_topic like image_transport: its "
                                          "sibling, /camera/image_raw -> /camera/camera_info"),
        *[DeclareLaunchArgument(name, default_value="", description=text, choices=choices)
          for name, (text, choices) in NODE_PARAMETERS.items()],
        OpaqueFunction(function=start_node),
    ])
