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
from launch.actions import OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.substitutions import FindPackageShare

from gs_tracker_ros.ros.launch_arguments import NODE_ARGUMENTS, NODE_PARAMETER_ARGUMENTS, declarations

PACKAGE = "gs_tracker_ros"
NODE = "gs_tracker_node"

def node_parameter_overrides(context):
    """``{parameter: value}`` of the NODE_PARAMETER_ARGUMENTS that were given (autostart as a bool)."""
    values = {}
    for name in NODE_PARAMETER_ARGUMENTS:
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
        *declarations(NODE_ARGUMENTS, defaults={"params_file": default_params}),
        OpaqueFunction(function=start_node),
    ])
